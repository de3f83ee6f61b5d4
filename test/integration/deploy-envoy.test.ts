// The Envoy side of every deployment we ship, proven by the tools its users run: Envoy Gateway's
// resources through `egctl x translate` and the xDS it generates through `envoy --mode validate`;
// the Istio EnvoyFilters' patches applied to representative Istio listeners and validated the same
// way; the plain-Envoy failover example validated. Each check also fails on a broken fixture.
// (istioctl analyze: deploy-istio.test.ts.)
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { extProcFilter, ROOT, validateEnvoyConfig } from '../harness/envoy.ts';
import { applyEnvoyFilter, type PatchContext } from '../harness/envoy-filter-patch.ts';
import { EGCTL, ensureGoTool, runTool } from '../harness/go-tool.ts';
import { ensureHelm, template } from '../harness/helm.ts';
import { tempDir } from '../harness/temp-dirs.ts';
import { snakeKeys, splitConfigDump, staticBootstrap } from '../harness/xds-static.ts';

type Json = Record<string, any>;

const read = (...p: string[]) => readFile(join(ROOT, ...p), 'utf8');
const shippedFilter = async (): Promise<Json> => extProcFilter(parse(await read('envoy', 'envoy.yaml')));
const withoutService = ({ grpc_service: _g, ...rest }: Json): Json => rest;

async function validateObject(cfg: Json, name: string): Promise<{ ok: boolean; output: string }> {
  const file = join(await tempDir('lmg-deploy-envoy-'), name);
  await writeFile(file, stringify(cfg));
  return validateEnvoyConfig(file);
}

describe('envoy/envoy-two-models.yaml (plain Envoy, two model clusters, failover in Envoy)', () => {
  it('validates, and its ext_proc filter and listener are envoy/envoy.yaml`s', async () => {
    const r = validateEnvoyConfig(join(ROOT, 'envoy', 'envoy-two-models.yaml'));
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
    const cfg = parse(await read('envoy', 'envoy-two-models.yaml'));
    expect(extProcFilter(cfg)).toEqual(await shippedFilter());
    const clusters = cfg.static_resources.clusters as Json[];
    const general = clusters.find((c) => c.name === 'model_general') as Json;
    expect(general.outlier_detection.consecutive_5xx).toBeGreaterThan(0);
    expect(general.load_assignment.endpoints.map((e: Json) => e.priority)).toEqual([0, 1]);
    expect(clusters.find((c) => c.name === 'model_hipaa')?.outlier_detection).toBeTruthy();
    // Retries only where the request never reached a model: no request runs twice.
    for (const vh of cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config
      .virtual_hosts as Json[])
      for (const r of vh.routes as Json[])
        expect(r.route.retry_policy.retry_on).toBe('connect-failure,refused-stream,reset-before-request');
  });

  it('a broken variant is rejected (the check can fail)', async () => {
    const cfg = parse(await read('envoy', 'envoy-two-models.yaml'));
    cfg.static_resources.clusters.find((c: Json) => c.name === 'model_general').outlier_detection.max_ejection_percent =
      250;
    const r = await validateObject(cfg, 'broken.yaml');
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/max_ejection_percent|MaxEjectionPercent/i);
  });
});

describe('Istio EnvoyFilters applied to representative Istio listeners', () => {
  const cases: [string, PatchContext, string][] = [
    ['ext-proc-gateway.yaml', 'GATEWAY', 'istio-gateway-listener.yaml'],
    ['ext-proc-sidecar.yaml', 'SIDECAR_INBOUND', 'istio-sidecar-inbound-listener.yaml'],
  ];
  const patched = async (filterFile: string, ctx: PatchContext, fixture: string, edit?: (ef: Json) => void) => {
    const ef = parse(await read('envoy', 'istio', filterFile));
    edit?.(ef);
    const boot = parse(await read('test', 'fixtures', 'deploy', fixture));
    return applyEnvoyFilter(boot, ef, ctx);
  };

  for (const [filterFile, ctx, fixture] of cases) {
    it(`envoy/istio/${filterFile} (${ctx}) validates once applied, with envoy/envoy.yaml's ext_proc settings`, async () => {
      const boot = await patched(filterFile, ctx, fixture);
      const r = await validateObject(boot, 'patched.yaml');
      expect(r.output).toContain('OK');
      expect(r.ok).toBe(true);
      // The filter is before the router, calls the gate's outbound cluster, and is envoy.yaml's.
      const hcm = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
      const names = (hcm.http_filters as Json[]).map((f) => f.name);
      expect(names.indexOf('envoy.filters.http.ext_proc')).toBe(names.indexOf('envoy.filters.http.router') - 1);
      const f = extProcFilter(boot);
      expect(f.grpc_service.envoy_grpc.cluster_name).toBe('outbound|50051||lm-gate.lm-gate.svc.cluster.local');
      expect(f.grpc_service.envoy_grpc.skip_envoy_headers).toBe(true);
      expect(withoutService(f)).toEqual(withoutService(await shippedFilter()));
      const shippedHcm = parse(await read('envoy', 'envoy.yaml')).static_resources.listeners[0].filter_chains[0]
        .filters[0].typed_config;
      for (const k of [
        'normalize_path',
        'merge_slashes',
        'path_with_escaped_slashes_action',
        'common_http_protocol_options',
      ])
        expect(hcm[k]).toEqual(shippedHcm[k]);
      expect(boot.static_resources.listeners[0].per_connection_buffer_limit_bytes).toBe(8388608);
    });
  }

  it('a broken filter in the patch is rejected by Envoy (the check can fail)', async () => {
    const boot = await patched('ext-proc-gateway.yaml', 'GATEWAY', 'istio-gateway-listener.yaml', (ef) => {
      ef.spec.configPatches[2].patch.value.typed_config.processing_mode.request_body_mode = 'SOMETIMES';
    });
    expect((await validateObject(boot, 'broken.yaml')).ok).toBe(false);
  });

  it('a patch that would not apply (wrong subFilter) fails instead of passing silently', async () => {
    await expect(
      patched('ext-proc-sidecar.yaml', 'SIDECAR_INBOUND', 'istio-sidecar-inbound-listener.yaml', (ef) => {
        ef.spec.configPatches[2].match.listener.filterChain.filter.subFilter.name = 'envoy.filters.http.routr';
      }),
    ).rejects.toThrow(/matched nothing/);
  });
});

describe('Envoy Gateway: egctl x translate, then envoy --mode validate on what it generates', () => {
  let egctl: string;
  beforeAll(async () => {
    ({ bin: egctl } = await ensureGoTool(EGCTL));
    await ensureHelm();
  }, 45 * 60_000);

  // The gate's Service as the chart installs it: egctl resolves the policy's backendRef to it.
  const GATE_SERVICE = stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'lm-gate', namespace: 'lm-gate' },
    spec: { clusterIP: '10.96.0.20', ports: [{ name: 'grpc', port: 50051, appProtocol: 'grpc' }] },
  });

  async function translate(
    resources: string,
    gateService = GATE_SERVICE,
  ): Promise<{ ok: boolean; out: Json; stderr: string }> {
    const file = join(await tempDir('lmg-deploy-eg-'), 'in.yaml');
    await writeFile(file, `${resources}\n---\n${gateService}`);
    const r = await runTool(egctl, [
      'x',
      'translate',
      '-f',
      file,
      '--from',
      'gateway-api',
      '--to',
      'gateway-api,xds',
      '-t',
      'all',
    ]);
    return { ok: r.ok, out: r.ok ? (parse(r.stdout) as Json) : {}, stderr: r.stderr };
  }

  const conditions = (out: Json): Json[] =>
    ['envoyExtensionPolicies', 'clientTrafficPolicies', 'httpRoutes', 'backends'].flatMap((kind) =>
      ((out[kind] ?? []) as Json[]).flatMap((o) =>
        [...(o.status?.ancestors ?? []), ...(o.status?.parents ?? []), o.status ?? {}].flatMap((a: Json) =>
          ((a.conditions ?? []) as Json[]).map((c) => ({ kind, name: o.metadata.name, ...c })),
        ),
      ),
    );

  const generated = (out: Json): Json => {
    const keys = Object.keys(out.xds ?? {});
    expect(keys).toEqual(['llm/llm']);
    return staticBootstrap(splitConfigDump(out.xds['llm/llm']));
  };

  it('envoy/envoy-gateway/lm-gate.yaml: every resource accepted, the generated Envoy config validates', async () => {
    const t = await translate(await read('envoy', 'envoy-gateway', 'lm-gate.yaml'));
    expect(t.stderr).toBe('');
    expect(t.ok).toBe(true);
    const cs = conditions(t.out);
    expect(cs.filter((c) => c.type === 'Accepted').map((c) => `${c.kind}/${c.name}`)).toEqual(
      expect.arrayContaining(['envoyExtensionPolicies/lm-gate', 'clientTrafficPolicies/lm-gate', 'httpRoutes/vllm']),
    );
    expect(cs.filter((c) => c.status !== 'True')).toEqual([]);
    const r = await validateObject(generated(t.out), 'eg.yaml');
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
  });

  it('generates envoy/envoy.yaml`s ext_proc settings (all but max_message_timeout, which EG cannot set)', async () => {
    const t = await translate(await read('envoy', 'envoy-gateway', 'lm-gate.yaml'));
    const boot = generated(t.out);
    const hcm = snakeKeys(
      ((boot.staticResources.listeners as Json[]).find((l) => l.name === 'llm/llm/http') as Json).defaultFilterChain
        .filters[0].typedConfig,
    ) as Json;
    const f = (hcm.http_filters as Json[]).find((x) =>
      String(x.name).startsWith('envoy.filters.http.ext_proc'),
    ) as Json;
    const eg = f.typed_config as Json;
    const ours = await shippedFilter();
    expect(eg.failure_mode_allow ?? false).toBe(ours.failure_mode_allow);
    expect(eg.status_on_error).toEqual(ours.status_on_error);
    expect(Number.parseFloat(eg.message_timeout)).toBe(Number.parseFloat(ours.message_timeout));
    expect(eg.allow_mode_override).toBe(true);
    expect(eg.metadata_options).toEqual(ours.metadata_options);
    expect({ response_body_mode: 'NONE', ...eg.processing_mode }).toEqual(ours.processing_mode);
    expect(eg.max_message_timeout).toBeUndefined();
    // The connection manager canonicalises paths and refuses underscores, as envoy/envoy.yaml's.
    expect(hcm).toMatchObject({
      normalize_path: true,
      merge_slashes: true,
      path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD',
      common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' },
    });
    expect(boot.layeredRuntime.layers[0].staticLayer['envoy.reloadable_features.ext_proc_graceful_grpc_close']).toBe(
      true,
    );
  });

  it('a policy outside the CRD schema is refused by egctl (the check can fail)', async () => {
    const bad = (await read('envoy', 'envoy-gateway', 'lm-gate.yaml')).replace('body: Buffered', 'body: Sometimes');
    const t = await translate(bad);
    expect(t.ok).toBe(false);
    expect(t.stderr).toContain('Sometimes');
  });

  it('a policy egctl accepts but Envoy cannot run is refused by envoy --mode validate', async () => {
    // Envoy bounds message_timeout to an hour; the CRD does not.
    const bad = (await read('envoy', 'envoy-gateway', 'lm-gate.yaml')).replace(
      'messageTimeout: 200ms',
      'messageTimeout: 2h',
    );
    const t = await translate(bad);
    expect(t.ok).toBe(true);
    const r = await validateObject(generated(t.out), 'eg-broken.yaml');
    expect(r.ok).toBe(false);
    expect(r.output).toContain('MessageTimeout');
  });

  it('a policy whose backend does not resolve is not Accepted (status, not silence)', async () => {
    const docs = parseAllDocuments(await read('envoy', 'envoy-gateway', 'lm-gate.yaml')).map((d) => d.toJSON() as Json);
    const policy = docs.find((d) => d.kind === 'EnvoyExtensionPolicy') as Json;
    policy.spec.extProc[0].backendRefs[0].name = 'lm-gaet';
    const t = await translate(docs.map((d) => stringify(d)).join('---\n'));
    expect(conditions(t.out).filter((c) => c.kind === 'envoyExtensionPolicies' && c.status === 'False')).not.toEqual(
      [],
    );
  });

  it('the chart`s EnvoyExtensionPolicy and ReferenceGrant, on the example`s Gateway, translate and validate too', async () => {
    const chart = await template({
      set: [
        'envoyGateway.extensionPolicy.enabled=true',
        'envoyGateway.extensionPolicy.targetRef.name=llm',
        'envoyGateway.extensionPolicy.targetRef.namespace=llm',
        // Envoy Gateway's proxies, as docs/install-envoy-gateway.md selects them.
        'networkPolicy.envoy.podSelector.matchLabels.istio=null',
        'networkPolicy.envoy.podSelector.matchLabels.app\\.kubernetes\\.io/component=proxy',
      ],
    });
    expect(chart.run.ok).toBe(true);
    const service = chart.find('Service');
    // What the API server assigns; egctl resolves a backend by its cluster IP.
    service.spec.clusterIP = '10.96.0.21';
    service.metadata.namespace = 'lm-gate';
    const example = parseAllDocuments(await read('envoy', 'envoy-gateway', 'lm-gate.yaml'))
      .map((d) => d.toJSON() as Json)
      .filter((d) => d.kind !== 'EnvoyExtensionPolicy' && d.kind !== 'ReferenceGrant');
    const grant = chart.find('ReferenceGrant');
    grant.metadata.namespace = 'lm-gate';
    const docs = [...example, chart.find('EnvoyExtensionPolicy'), grant].map((d) => stringify(d)).join('---\n');
    const t = await translate(docs, stringify(service));
    expect(t.stderr).toBe('');
    const cs = conditions(t.out);
    expect(
      cs.filter((c) => c.kind === 'envoyExtensionPolicies' && c.type === 'Accepted' && c.status === 'True'),
    ).toHaveLength(1);
    expect(cs.filter((c) => c.status !== 'True')).toEqual([]);
    const r = await validateObject(generated(t.out), 'eg-chart.yaml');
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
  });
});
