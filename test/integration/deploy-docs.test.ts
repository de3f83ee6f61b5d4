// The install guides followed as a reader would, without the code: docs/install-istio.md's own
// values blocks and helm command rendered by the pinned helm, for each placement, and checked
// against what the guide says will happen (the EnvoyFilter lands on the Envoys the NetworkPolicy
// admits, every Secret the pods read is one the guide creates, with the key the config reads, the
// image is the one the guide builds), then analysed by istioctl. Every repository path, metric,
// alert, error code and README section the guides and operator pages name must exist. (The chart itself:
// deploy-chart.test.ts; the Istio files: deploy-istio.test.ts.)
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfigFile } from '../../extproc/config/load.ts';
import { ERROR_CATALOG } from '../../extproc/pipeline/errors.ts';
import { ROOT } from '../harness/envoy.ts';
import { type Gate, makeKey, startGate } from '../harness/gate.ts';
import { ensureGoTool, ISTIOCTL, runTool } from '../harness/go-tool.ts';
import { ensureHelm, type K8sObject, type Rendered, template } from '../harness/helm.ts';
import { exportedFamilies, familyOf } from '../harness/promql-names.ts';
import { startRedis } from '../harness/redis.ts';
import { tempDir } from '../harness/temp-dirs.ts';

type Json = Record<string, any>;

const GUIDES = ['install-istio.md', 'install-envoy-gateway.md', 'install-envoy.md'];
// The operator pages docs/deploy.md indexes, whose names are checked with the guides'.
const OPERATOR_DOCS = ['deploy.md', 'sizing.md', 'failure-modes.md', 'observability.md', 'upgrades.md', 'security.md'];
// What the Secrets the guide creates would put in the environment.
const ENV = { LMGATE_REDIS_URL: 'redis://redis.lm-gate.svc:6379/0', VLLM_API_KEY: 'vllm-test-key' };

let istioctl: string;
const docs: Record<string, string> = {};

beforeAll(async () => {
  ({ bin: istioctl } = await ensureGoTool(ISTIOCTL));
  await ensureHelm();
  for (const g of [...GUIDES, ...OPERATOR_DOCS]) docs[g] = await readFile(join(ROOT, 'docs', g), 'utf8');
}, 45 * 60_000);

/** The fenced blocks of one language, dedented (a block inside a list item is indented). */
function blocks(md: string, lang: string): string[] {
  const out: string[] = [];
  for (const m of md.matchAll(/^( *)```(\w*)\n([\s\S]*?)^\1```$/gm)) {
    if (m[2] !== lang) continue;
    const indent = (m[1] as string).length;
    out.push(
      (m[3] as string)
        .split('\n')
        .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
        .join('\n'),
    );
  }
  return out;
}

function oneBlock(md: string, lang: string, has: string): string {
  const found = blocks(md, lang).filter((b) => b.includes(has));
  expect(found, `one ${lang} block with ${has}`).toHaveLength(1);
  return found[0] as string;
}

/** `kubectl ... create secret generic NAME --from-literal=KEY=... --from-file=[KEY=]PATH`. */
function createdSecrets(md: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of md.matchAll(/create secret generic (\S+)((?: --from-(?:literal|file)=\S+)+)/g)) {
    const keys = new Set<string>();
    for (const [, kind, arg] of (m[2] as string).matchAll(/--from-(literal|file)=(\S+)/g)) {
      const eq = (arg as string).indexOf('=');
      if (kind === 'literal' || eq >= 0) keys.add((arg as string).slice(0, eq));
      else keys.add((arg as string).split('/').at(-1) as string);
    }
    out.set(m[1] as string, keys);
  }
  return out;
}

/** The guide's helm command: its release, namespace and values files, `my-values.yaml` the reader's. */
function helmCommand(md: string): { release: string; namespace: string; values: string[] } {
  const m = /helm upgrade --install (\S+) charts\/lm-gate -n (\S+)((?: -f [^\s`]+)+)/.exec(md);
  if (!m) throw new Error('no helm upgrade --install command');
  const values = [...(m[3] as string).matchAll(/-f ([^\s`]+)/g)].map((f) => f[1] as string);
  return { release: m[1] as string, namespace: m[2] as string, values };
}

/** Renders the guide's command with `my-values.yaml` made of the given blocks. */
async function followGuide(md: string, myValues: string[]): Promise<Rendered> {
  const cmd = helmCommand(md);
  expect(cmd.values.at(-1)).toBe('my-values.yaml');
  // The namespace the guides create, and the one the rendered objects (and EnvoyFilter cluster) assume.
  expect(cmd.namespace).toBe('lm-gate');
  // The blocks go into one file: they must not set the same top-level key.
  const keys = myValues.flatMap((b) => Object.keys(parse(b) as Json));
  expect(new Set(keys).size).toBe(keys.length);
  const mine = join(await tempDir('lmg-docs-'), 'my-values.yaml');
  await writeFile(mine, myValues.join('\n'));
  const values = cmd.values.slice(0, -1).map((v) => join(ROOT, v));
  for (const v of values) expect(existsSync(v), v).toBe(true);
  const t = await template({ values: [...values, mine], release: cmd.release });
  expect(t.run.stderr).toBe('');
  expect(t.run.ok).toBe(true);
  return t;
}

/** Every Secret the pod reads exists in the guide, with the keys the pod and its config read. */
function expectSecretsCreated(t: Rendered, created: Map<string, Set<string>>): void {
  const pod = t.find('Deployment').spec.template.spec;
  const c = pod.containers[0];
  const configText = t.find('ConfigMap').data['lm-gate.yaml'] as string;
  for (const e of (c.env ?? []) as Json[]) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) continue;
    expect(created.get(ref.name), `Secret ${ref.name}`).toBeDefined();
    expect([...(created.get(ref.name) ?? [])], `Secret ${ref.name}`).toContain(ref.key);
  }
  const secretVolumes = (pod.volumes as Json[]).filter((v) => v.secret);
  expect(secretVolumes.length).toBeGreaterThan(0);
  for (const v of secretVolumes) {
    const name = v.secret.secretName as string;
    expect(created.get(name), `Secret ${name}`).toBeDefined();
    const mount = (c.volumeMounts as Json[]).find((m) => m.name === v.name) as Json;
    // The files the config reads from this mount are keys of the Secret; and some file is read.
    const read = [...configText.matchAll(new RegExp(`${mount.mountPath}/([^\\s'"/]+)`, 'g'))].map((m) => m[1]);
    expect(read, `config reads from ${mount.mountPath}`).not.toEqual([]);
    for (const file of read) expect([...(created.get(name) ?? [])], `Secret ${name}`).toContain(file);
  }
}

/** The EnvoyFilter patches the Envoys the NetworkPolicy admits to the gRPC port, and only them. */
function expectPolicyAdmitsFilteredEnvoys(t: Rendered): K8sObject {
  const ef = t.find('EnvoyFilter');
  const np = t.find('NetworkPolicy');
  const grpc = (np.spec.ingress as Json[]).filter((r) => r.ports.some((p: Json) => p.port === 50051));
  expect(grpc).toHaveLength(1);
  expect(grpc[0]?.from).toEqual([
    {
      podSelector: { matchLabels: ef.spec.workloadSelector.labels },
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ef.metadata.namespace } },
    },
  ]);
  return ef;
}

describe('docs/install-istio.md, followed', () => {
  const placements: [string, string, string][] = [
    ['ingress gateway', 'context: GATEWAY', 'ext-proc-gateway.yaml'],
    ['sidecar inbound', 'context: SIDECAR_INBOUND', 'ext-proc-sidecar.yaml'],
  ];

  for (const [name, marker, shipped] of placements) {
    it(`${name}: the guide's values render, wired as the guide says, and istioctl analyze finds no issue`, async () => {
      const md = docs['install-istio.md'] as string;
      const common = oneBlock(md, 'yaml', 'image:');
      const t = await followGuide(md, [common, oneBlock(md, 'yaml', marker)]);
      const image = (parse(common) as Json).image;
      expect(t.find('Deployment').spec.template.spec.containers[0].image).toBe(`${image.repository}:${image.tag}`);
      // The image the guide tells you to build is the one the pods run, and keys create runs in it.
      expect(md).toContain(`docker build -t ${image.repository}:${image.tag} .`);
      const cfg = parseConfigFile(t.find('ConfigMap').data['lm-gate.yaml'] as string, 'lm-gate.yaml', ENV);
      expect(cfg.routing.routes.map((r) => r.name)).toEqual(['general']);
      expectSecretsCreated(t, createdSecrets(md));
      // The chart's filter is envoy/istio/'s, so its cluster name is the release's Service.
      const ef = expectPolicyAdmitsFilteredEnvoys(t);
      const file = parse(await readFile(join(ROOT, 'envoy', 'istio', shipped), 'utf8')) as Json;
      expect(ef.spec).toEqual(file.spec);
      expect(ef.metadata.namespace).toBe(file.metadata.namespace);
      for (const m of md.matchAll(/deploy\/([a-z0-9-]+)/g)) expect(t.find('Deployment').metadata.name).toBe(m[1]);
      const out = join(await tempDir('lmg-docs-'), 'rendered.yaml');
      await writeFile(out, t.run.stdout);
      const r = await runTool(istioctl, ['analyze', '--use-kube=false', '--failure-threshold', 'Info', out]);
      expect(r.stdout + r.stderr).toContain('No validation issues found');
      expect(r.ok).toBe(true);
    });
  }

  it('a sidecar block without istio: null is refused, not rendered into a filter that patches nothing (the check can fail)', async () => {
    const md = docs['install-istio.md'] as string;
    const sidecar = oneBlock(md, 'yaml', 'context: SIDECAR_INBOUND').replaceAll('istio: null, ', '');
    expect((parse(sidecar) as Json).istio.envoyFilter.workloadSelector).toEqual({ app: 'vllm' });
    const mine = join(await tempDir('lmg-docs-'), 'my-values.yaml');
    await writeFile(mine, `${oneBlock(md, 'yaml', 'image:')}\n${sidecar}`);
    const t = await template({ values: [join(ROOT, helmCommand(md).values[0] as string), mine] });
    expect(t.run.ok).toBe(false);
    expect(t.run.stderr).toContain('keeps istio: ingressgateway');
    // And the helpers see a missing Secret key: the signing key under another name.
    const wrong = createdSecrets(md.replace('--from-file=key.pem=', '--from-file=signing.pem='));
    const ok = await followGuide(md, [oneBlock(md, 'yaml', 'image:'), oneBlock(md, 'yaml', 'context: GATEWAY')]);
    expect(() => expectSecretsCreated(ok, wrong)).toThrow(/lm-gate-audit-signing/);
  });
});

describe('docs/install-envoy-gateway.md, followed', () => {
  it('its values over the Istio guide`s render the NetworkPolicy for Envoy Gateway`s proxies and no Istio object', async () => {
    const md = docs['install-envoy-gateway.md'] as string;
    const eg = oneBlock(md, 'yaml', 'envoy-gateway-system');
    const t = await followGuide(md, [oneBlock(docs['install-istio.md'] as string, 'yaml', 'image:'), eg]);
    const np = t.find('NetworkPolicy');
    const grpc = (np.spec.ingress as Json[]).find((r) => r.ports.some((p: Json) => p.port === 50051)) as Json;
    expect(grpc.from[0].podSelector.matchLabels).toEqual({
      'app.kubernetes.io/managed-by': 'envoy-gateway',
      'app.kubernetes.io/component': 'proxy',
    });
    expect(t.objects.filter((o) => String(o.apiVersion).includes('istio.io'))).toEqual([]);
  });
});

describe('what the guides name exists', () => {
  let readme: string;
  let exported: Set<string>;
  let rules: string;
  let gate: Gate | undefined;
  beforeAll(async () => {
    readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    // What a running gate exports (with Redis, for the Redis and shared kill switch families).
    const redis = await startRedis();
    try {
      gate = await startGate([makeKey('docs')], { extra: { redis: { url: redis.url } } });
      exported = exportedFamilies(await gate.metrics());
    } finally {
      await gate?.stop();
      await redis.stop();
    }
    rules = await readFile(join(ROOT, 'charts', 'lm-gate', 'files', 'prometheus-rules.yaml'), 'utf8');
  });

  /** A repository path, or a glob in its last segment that matches some file. */
  function pathExists(p: string): boolean {
    if (!p.includes('*')) return existsSync(join(ROOT, p));
    const dir = p.slice(0, p.lastIndexOf('/'));
    const re = new RegExp(
      `^${p
        .slice(dir.length + 1)
        .replaceAll('.', '\\.')
        .replaceAll('*', '.*')}$`,
    );
    return existsSync(join(ROOT, dir)) && readdirSync(join(ROOT, dir)).some((f) => re.test(f));
  }

  /** Repository paths, metrics, alerts, error codes and README sections a guide names that do not exist. */
  function unknownNames(md: string): string[] {
    const missing: string[] = [];
    for (const [, p] of md.matchAll(/`((?:envoy|charts|docs|scripts|test|bench|examples)\/[\w./*-]+)`/g)) {
      if (!pathExists(p as string)) missing.push(`path ${p}`);
    }
    for (const [n] of md.matchAll(/\blmgate_[a-z0-9_]+/g)) if (!exported.has(familyOf(n, exported))) missing.push(n);
    for (const [a] of md.matchAll(/\bLMGate[A-Za-z]+/g))
      if (!new RegExp(`alert: ${a}$`, 'm').test(rules)) missing.push(a);
    for (const [, code] of md.matchAll(/`([a-z]+(?:_[a-z]+)+)`/g))
      if (/(missing|invalid|denied|refused|unavailable)/.test(code as string) && !((code as string) in ERROR_CATALOG))
        missing.push(`error ${code}`);
    for (const [, quoted] of md.matchAll(/README "([^"]+)"/g)) {
      // A section name may wrap across lines in the Markdown source.
      const sec = (quoted as string).replace(/\s+/g, ' ');
      if (!new RegExp(`^(#+ [^\\n]*${sec}|${sec}:)`, 'm').test(readme)) missing.push(`README "${sec}"`);
    }
    return missing;
  }

  it('repository paths, metrics, alerts, error codes and README sections', () => {
    for (const [g, md] of Object.entries(docs)) expect(unknownNames(md), g).toEqual([]);
  });

  it('a name that does not exist is caught (the check can fail)', () => {
    expect(
      unknownNames(
        'apply `envoy/istio/ext-proc-sidecars.yaml`; watch lmgate_request_total and LMGateStreamReset; ' +
          'a 401 (`missing_api_keys`); README "Kill switches"; `envoy/istio/*.yaml`; `envoy/istio/*.json`; ' +
          '`test/integration/deploy-*.test.ts`; lmgate_phase_duration_seconds_bucket',
      ),
    ).toEqual([
      'path envoy/istio/ext-proc-sidecars.yaml',
      'path envoy/istio/*.json',
      'lmgate_request_total',
      'LMGateStreamReset',
      'error missing_api_keys',
      'README "Kill switches"',
    ]);
  });
});
