// `npm run bench:peers` in CI, as far as it goes without building Envoy AI Gateway (about two
// minutes of a cold Go build on two cores, which CI is not made to pay; `npm run bench:peers --
// --smoke` is the manual end-to-end check, README "Performance"). Checked here: the Envoy
// config the peers bench runs, AI Gateway's filters included, is accepted by the pinned Envoy
// and its parts agree with the filter config the extproc gets; the committed smoke result
// matches the schema and its report and chart render.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, validateEnvoyConfig } from '../test/harness/envoy.ts';
import { AI_GATEWAY_VERSION } from './lib/ai-gateway.ts';
import { AIGW_METADATA_NAMESPACE, aiGatewayFilterConfig } from './lib/ai-gateway-envoy.ts';
import { renderPeersChart } from './lib/peers-chart.ts';
import { renderPeersMarkdown } from './lib/peers-report.ts';
import { peersResult } from './lib/peers-result.ts';
import { type BenchGate, benchEnvoyConfig } from './lib/topology.ts';

type Json = Record<string, any>;

async function peersEnvoyConfig(): Promise<{ file: string; cfg: Json }> {
  const dir = await mkdtemp(join(tmpdir(), 'lm-gate-peers-envoy-'));
  // Only names and ports are read from the gateways when the config is written.
  const governed = { name: 'governed', grpcPort: 50001 } as BenchGate;
  const aiGateway = { name: 'ai_gateway', grpcPort: 50002 };
  const file = await benchEnvoyConfig(join(dir, 'envoy.yaml'), 9901, 8000, [
    { name: 'direct', port: 10001 },
    { name: 'governed', port: 10002, gate: governed },
    { name: 'ai_gateway', port: 10003, aiGateway },
    { name: 'ai_gateway_verify', port: 10004, aiGateway, accessLog: join(dir, 'verify.log') },
  ]);
  return { file, cfg: parse(await readFile(file, 'utf8')) as Json };
}

describe('bench:peers without the AI Gateway build', () => {
  it("the peers Envoy config, AI Gateway's router and upstream ext_proc filters included, validates", async () => {
    const { file } = await peersEnvoyConfig();
    const r = validateEnvoyConfig(file);
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
  });

  it("AI Gateway's listener, route and cluster name what its filter config expects", async () => {
    const { cfg } = await peersEnvoyConfig();
    const filter = aiGatewayFilterConfig(AI_GATEWAY_VERSION);
    const listener = cfg.static_resources.listeners.find((l: Json) => l.name === 'ai_gateway');
    const hcm = listener.filter_chains[0].filters[0].typed_config;
    expect(hcm.http_filters.map((f: Json) => f.name)).toEqual([
      'envoy.filters.http.ext_proc/aigateway',
      'envoy.filters.http.router',
    ]);
    const router = hcm.http_filters[0].typed_config;
    // The extproc takes a stream that carries attributes for the upstream filter's.
    expect(router.request_attributes).toBeUndefined();
    expect(router.processing_mode).toMatchObject({ request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' });
    expect(router.metadata_options.receiving_namespaces.untyped).toEqual([AIGW_METADATA_NAMESPACE]);
    const route = hcm.route_config.virtual_hosts[0].routes[0];
    for (const cost of filter.llmRequestCosts)
      expect(route.metadata.filter_metadata['aigateway.envoy.io'].aigw_route_name).toBe(cost.routeName);

    const cluster = cfg.static_resources.clusters.find((c: Json) => c.name === route.route.cluster);
    const endpoint = cluster.load_assignment.endpoints[0].lb_endpoints[0];
    expect(endpoint.endpoint.address.socket_address.port_value).toBe(8000);
    expect(endpoint.metadata.filter_metadata['aigateway.envoy.io'].per_route_rule_backend_name).toBe(
      filter.backends[0].name,
    );
    const upstream = cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    expect(upstream.http_filters.map((f: Json) => f.name)).toEqual([
      'envoy.filters.http.ext_proc/aigateway',
      'envoy.filters.http.header_mutation',
      'envoy.filters.http.upstream_codec',
    ]);
    expect(upstream.http_filters[0].typed_config.request_attributes).toHaveLength(3);
    expect(upstream.http_filters[0].typed_config.grpc_service.envoy_grpc.cluster_name).toBe('ext_proc_ai_gateway');
    const grpc = cfg.static_resources.clusters.find((c: Json) => c.name === 'ext_proc_ai_gateway');
    expect(grpc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(50002);

    // The measured listeners log nothing; the verification listener logs the metadata.
    expect(hcm.access_log).toBeUndefined();
    const verify = cfg.static_resources.listeners.find((l: Json) => l.name === 'ai_gateway_verify');
    expect(JSON.stringify(verify.filter_chains[0].filters[0].typed_config.access_log)).toContain(
      AIGW_METADATA_NAMESPACE,
    );
  });

  it('the committed smoke result matches the schema, and its report and chart render', async () => {
    const base = join(ROOT, 'bench', 'results', 'peers-smoke');
    const r = peersResult.parse(JSON.parse(await readFile(`${base}.json`, 'utf8')));
    expect(r.aiGateway.version).toBe(AI_GATEWAY_VERSION);
    const md = renderPeersMarkdown(r);
    expect(md).toContain('## Open loop: latency added to Envoy alone');
    expect(md).toContain('**LM Gate / AI Gateway**');
    const svg = renderPeersChart(r);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('AI Gateway (metering)');
  });
});
