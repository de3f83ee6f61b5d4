// charts/lm-gate, checked by the pinned helm (lint, template) for the default values and the
// production values file, and the rendered objects checked for what the issue asks of them. A
// broken chart makes helm fail, so the checks can fail.
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfigFile } from '../../extproc/config/load.ts';
import { RESTART_ONLY } from '../../extproc/config/restart.ts';
import { ROOT } from '../harness/envoy.ts';
import { CHART, ensureHelm, helm, type K8sObject, PRODUCTION_VALUES, template } from '../harness/helm.ts';
import { tempDir } from '../harness/temp-dirs.ts';

type Json = Record<string, any>;

beforeAll(async () => {
  await ensureHelm();
}, 45 * 60_000);

const container = (d: K8sObject): Json => d.spec.template.spec.containers[0];
const gateConfig = (cm: K8sObject) => parse(cm.data['lm-gate.yaml'] as string) as Json;
const checksum = (d: K8sObject): string => d.spec.template.metadata.annotations['lm-gate.io/restart-config-checksum'];
// What the chart's Secrets would put in the environment.
const ENV = { LMGATE_REDIS_URL: 'redis://redis.lm-gate.svc:6379/0', VLLM_API_KEY: 'vllm-test-key' };

describe('helm lint', () => {
  it('passes on the default values and on the production values', async () => {
    for (const values of [[], ['-f', PRODUCTION_VALUES]]) {
      const r = await helm(['lint', CHART, '--strict', '--kube-version', '1.33.0', ...values]);
      expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.ok).toBe(true);
    }
  });

  it('fails on a broken chart and on values outside values.schema.json (the check can fail)', async () => {
    const broken = join(await tempDir('lmg-chart-'), 'lm-gate');
    await cp(CHART, broken, { recursive: true });
    const svc = join(broken, 'templates', 'service.yaml');
    await writeFile(svc, (await readFile(svc, 'utf8')).replace('  ports:', '  ports: {{ .Values.ports.grpc'));
    const r = await helm(['lint', broken, '--kube-version', '1.33.0']);
    expect(r.ok).toBe(false);
    const bad = await helm(['lint', CHART, '--kube-version', '1.33.0', '--set', 'service.type=LoadBalancer']);
    expect(bad.ok).toBe(false);
    expect(bad.stdout + bad.stderr).toContain('/service/type');
  });
});

describe('helm template, default values', () => {
  it('renders the Deployment non-root, read-only root filesystem, probed, with a grace period above the drain', async () => {
    const t = await template();
    expect(t.run.stderr).toBe('');
    const d = t.find('Deployment');
    const pod = d.spec.template.spec;
    const c = container(d);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    // gRPC health (grpc.health.v1) on the ext_proc port, and the admin port's /readyz and /healthz.
    expect(c.startupProbe.grpc).toEqual({ port: 50051, service: 'envoy.service.ext_proc.v3.ExternalProcessor' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    const cfg = gateConfig(t.find('ConfigMap'));
    const drainS = cfg.server.drainTimeoutMs / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(c.lifecycle.preStop.sleep.seconds + drainS + 2 * 2);
    expect(c.env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' });
    expect(c.resources.requests).toEqual({ cpu: '500m', memory: '256Mi' });
    // A directory mount: the kubelet's ..data swap reaches the config watch (a subPath never updates).
    const mount = (c.volumeMounts as Json[]).find((m) => m.name === 'config');
    expect(mount).toEqual({ name: 'config', mountPath: '/etc/lm-gate/config', readOnly: true });
    expect(c.args).toEqual(['serve', '-c', '/etc/lm-gate/config/lm-gate.yaml']);
  });

  it('the NetworkPolicy admits only the Envoy pods` selector to the gRPC port', async () => {
    const t = await template();
    const np = t.find('NetworkPolicy');
    expect(np.spec.podSelector.matchLabels).toEqual(t.find('Deployment').spec.selector.matchLabels);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    const grpcRules = (np.spec.ingress as Json[]).filter((r) => r.ports.some((p: Json) => p.port === 50051));
    expect(grpcRules).toEqual([
      {
        from: [
          {
            podSelector: { matchLabels: { istio: 'ingressgateway' } },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' } },
          },
        ],
        ports: [{ port: 50051, protocol: 'TCP' }],
      },
    ]);
    // Every other rule is for the admin port only.
    for (const r of (np.spec.ingress as Json[]).filter((x) => !grpcRules.includes(x)))
      expect(r.ports).toEqual([{ port: 9901, protocol: 'TCP' }]);
  });

  it('the Service, PDB and config the gate accepts; no optional objects unless asked', async () => {
    const t = await template();
    expect(t.find('Service').spec.ports.map((p: Json) => [p.name, p.port, p.appProtocol])).toEqual([
      ['grpc', 50051, 'grpc'],
      ['http-admin', 9901, 'http'],
    ]);
    expect(t.find('PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    const text = t.find('ConfigMap').data['lm-gate.yaml'] as string;
    const cfg = parseConfigFile(text, 'lm-gate.yaml', {});
    expect(cfg.server.grpcAddress).toBe('0.0.0.0:50051');
    expect(cfg.server.adminAddress).toBe('0.0.0.0:9901');
    expect(t.objects.map((o) => o.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount'].sort(),
    );
  });
});

describe('helm template, production values', () => {
  it('renders every optional object, and a config the gate accepts with its Secrets', async () => {
    const t = await template({ values: [PRODUCTION_VALUES] });
    expect(t.run.ok).toBe(true);
    for (const kind of [
      'HorizontalPodAutoscaler',
      'ServiceMonitor',
      'PrometheusRule',
      'EnvoyFilter',
      'DestinationRule',
      'PodDisruptionBudget',
    ])
      expect(t.find(kind)).toBeTruthy();
    expect(t.objects.some((o) => o.kind === 'Deployment' && 'replicas' in o.spec)).toBe(false);
    const text = t.find('ConfigMap').data['lm-gate.yaml'] as string;
    const cfg = parseConfigFile(text, 'lm-gate.yaml', ENV);
    expect(cfg.identity.keysFile).toBe('/etc/lm-gate/keys/keys.yaml');
    expect(cfg.redis?.url).toBe(ENV.LMGATE_REDIS_URL);
    expect(cfg.audit.path).toBe('-');
    const c = container(t.find('Deployment'));
    expect(t.find('Deployment').spec.template.spec.containers[0].image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(c.env).toContainEqual({
      name: 'LMGATE_REDIS_URL',
      valueFrom: { secretKeyRef: { name: 'lm-gate-redis', key: 'url' } },
    });
    expect(c.env).toContainEqual({
      name: 'VLLM_API_KEY',
      valueFrom: { secretKeyRef: { name: 'lm-gate-provider-credentials', key: 'vllm' } },
    });
    const volumes = t.find('Deployment').spec.template.spec.volumes as Json[];
    expect(volumes).toContainEqual({ name: 'keys', secret: { secretName: 'lm-gate-keys' } });
    expect(volumes).toContainEqual({ name: 'secret-audit-signing', secret: { secretName: 'lm-gate-audit-signing' } });
    // The ServiceMonitor scrapes the Service's admin port by name, on the Service's labels.
    const sm = t.find('ServiceMonitor');
    const svc = t.find('Service');
    expect(sm.spec.endpoints).toMatchObject([{ port: 'http-admin', path: '/metrics' }]);
    expect(svc.spec.ports.map((p: Json) => p.name)).toContain(sm.spec.endpoints[0].port);
    expect((svc.metadata as Json).labels).toMatchObject(sm.spec.selector.matchLabels);
    // The PrometheusRule carries the shipped rule file, unchanged.
    const rules = parse(await readFile(join(CHART, 'files', 'prometheus-rules.yaml'), 'utf8'));
    expect(t.find('PrometheusRule').spec).toEqual(rules);
  });

  it('the rendered EnvoyFilters (gateway and sidecar) and DestinationRule are envoy/istio/`s files', async () => {
    const t = await template({ values: [PRODUCTION_VALUES] });
    const shipped = async (f: string) => parse(await readFile(join(ROOT, 'envoy', 'istio', f), 'utf8'));
    expect(t.find('EnvoyFilter').spec).toEqual((await shipped('ext-proc-gateway.yaml')).spec);
    expect(t.find('DestinationRule').spec).toEqual((await shipped('lm-gate-destinationrule.yaml')).spec);
    const sidecar = await template({
      set: [
        'istio.envoyFilter.enabled=true',
        'istio.envoyFilter.context=SIDECAR_INBOUND',
        'istio.envoyFilter.namespace=llm',
        'istio.envoyFilter.workloadSelector.istio=null',
        'istio.envoyFilter.workloadSelector.app=vllm',
        'networkPolicy.envoy.podSelector.matchLabels.istio=null',
        'networkPolicy.envoy.podSelector.matchLabels.app=vllm',
      ],
    });
    expect(sidecar.find('EnvoyFilter').metadata.namespace).toBe('llm');
    expect(sidecar.find('EnvoyFilter').spec).toEqual((await shipped('ext-proc-sidecar.yaml')).spec);
  });
});

describe('Secrets the production config reads', () => {
  it('every file path under /etc/lm-gate/secrets/ in the config is in a mounted Secret, and every mount is read', async () => {
    const t = await template({ values: [PRODUCTION_VALUES] });
    const cfg = parseConfigFile(t.find('ConfigMap').data['lm-gate.yaml'] as string, 'lm-gate.yaml', ENV);
    expect(cfg.audit.signingKey).toBe('/etc/lm-gate/secrets/audit-signing/key.pem');
    const c = container(t.find('Deployment'));
    const mounts = (c.volumeMounts as Json[]).filter((m) => String(m.mountPath).startsWith('/etc/lm-gate/secrets/'));
    const read = (t.find('ConfigMap').data['lm-gate.yaml'] as string).match(/\/etc\/lm-gate\/secrets\/[^\s'"]+/g) ?? [];
    expect(read.length).toBeGreaterThan(0);
    for (const path of read)
      expect(
        mounts.some((m) => path.startsWith(`${m.mountPath}/`)),
        path,
      ).toBe(true);
    for (const m of mounts)
      expect(
        read.some((path) => path.startsWith(`${m.mountPath}/`)),
        m.mountPath,
      ).toBe(true);
  });
});

describe('restart-only config fields', () => {
  it('the chart hashes exactly the fields extproc/config/restart.ts cannot reload', async () => {
    const helpers = await readFile(join(CHART, 'templates', '_helpers.tpl'), 'utf8');
    const list = /define "lm-gate.restartOnlyFields" -}}\n([\s\S]*?)\n{{- end/.exec(helpers)?.[1];
    expect(parse(list ?? '')).toEqual(RESTART_ONLY);
  });

  it('a hot-reloadable change keeps the checksum; a restart-only change rolls the pods', async () => {
    const base = checksum((await template()).find('Deployment'));
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    const reloadable = await template({
      set: ['config.logging.level=debug', 'config.server.drainTimeoutMs=16000', 'config.audit.capture.rules=null'],
    });
    expect(checksum(reloadable.find('Deployment'))).toBe(base);
    for (const set of [
      'config.server.parseWorkers=2',
      'config.audit.maxPendingBytes=1000000',
      'config.killSwitch.maxEntries=500',
      // A nested restart-only field: the template walks it key by key.
      'config.audit.capture.path=/var/lib/lm-gate/capture.log',
      'ports.grpc=50061',
    ]) {
      const changed = await template({ set: [set] });
      expect(changed.run.ok, set).toBe(true);
      expect(checksum(changed.find('Deployment')), set).not.toBe(base);
    }
  });
});

describe('what the chart refuses to render', () => {
  it('a grace period the drain does not fit in, and server.workers (one Service port per pod)', async () => {
    const short = await template({ set: ['terminationGracePeriodSeconds=20'] });
    expect(short.run.ok).toBe(false);
    expect(short.run.stderr).toContain('terminationGracePeriodSeconds (20)');
    const workers = await template({ set: ['config.server.workers=2'] });
    expect(workers.run.ok).toBe(false);
    expect(workers.run.stderr).toContain('config.server.workers must be 1');
  });

  it('a sidecar EnvoyFilter or NetworkPolicy that keeps the default istio: ingressgateway label (Helm merges maps)', async () => {
    const dir = await tempDir('lmg-chart-');
    const sidecar = (workload: Json, envoyPods: Json) => ({
      istio: {
        envoyFilter: { enabled: true, context: 'SIDECAR_INBOUND', namespace: 'llm', workloadSelector: workload },
      },
      networkPolicy: {
        envoy: {
          podSelector: { matchLabels: envoyPods },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'llm' } },
        },
      },
    });
    const render = async (name: string, values: Json) => {
      const file = join(dir, name);
      await writeFile(file, stringify(values));
      return template({ values: [file] });
    };
    const ok = await render('ok.yaml', sidecar({ istio: null, app: 'vllm' }, { istio: null, app: 'vllm' }));
    expect(ok.run.stderr).toBe('');
    expect(ok.find('EnvoyFilter').spec.workloadSelector.labels).toEqual({ app: 'vllm' });
    const filter = await render('f.yaml', sidecar({ app: 'vllm' }, { istio: null, app: 'vllm' }));
    expect(filter.run.ok).toBe(false);
    expect(filter.run.stderr).toContain('istio.envoyFilter.workloadSelector keeps istio: ingressgateway');
    const policy = await render('p.yaml', sidecar({ istio: null, app: 'vllm' }, { app: 'vllm' }));
    expect(policy.run.ok).toBe(false);
    expect(policy.run.stderr).toContain('networkPolicy.envoy.podSelector.matchLabels keeps istio: ingressgateway');
    const eg = await render('eg.yaml', {
      envoyGateway: { extensionPolicy: { enabled: true } },
      networkPolicy: { envoy: { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'proxy' } } } },
    });
    expect(eg.run.ok).toBe(false);
    expect(eg.run.stderr).toContain('while the chart renders an EnvoyExtensionPolicy');
  });

  it('an EnvoyFilter without a workload selector (it would patch every proxy in the namespace)', async () => {
    const file = join(await tempDir('lmg-chart-'), 'v.yaml');
    // null is how a values file removes the default selector (an empty map merges with it).
    await writeFile(file, stringify({ istio: { envoyFilter: { enabled: true, workloadSelector: null } } }));
    const r = await template({ values: [file] });
    expect(r.run.ok).toBe(false);
    expect(r.run.stderr).toContain('workloadSelector');
  });
});
