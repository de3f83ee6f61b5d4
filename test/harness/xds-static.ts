// What Envoy Gateway would send an Envoy, made into a bootstrap the real Envoy can check with
// `--mode validate`. `egctl x translate --to xds -t all` prints an admin config dump per Gateway:
// the bootstrap, and the listeners, routes, clusters and endpoints EG serves over ADS. Envoy in
// validate mode checks a bootstrap only, so the dynamic resources become static ones: listeners
// with their RDS route configs inlined, EDS clusters with their endpoints inlined. Nothing else is
// changed, so what Envoy validates is EG's own output for our resources.

type Json = Record<string, any>;

export interface XdsDump {
  bootstrap: Json;
  listeners: Json[];
  routes: Json[];
  clusters: Json[];
  endpoints: Json[];
}

/** The parts of one config dump (`configs: [...]` with @type per entry). */
export function splitConfigDump(dump: Json): XdsDump {
  const out: XdsDump = { bootstrap: {}, listeners: [], routes: [], clusters: [], endpoints: [] };
  for (const c of dump.configs as Json[]) {
    const type = String(c['@type']);
    if (type.endsWith('BootstrapConfigDump')) out.bootstrap = c.bootstrap;
    else if (type.endsWith('ListenersConfigDump'))
      out.listeners = (c.dynamicListeners ?? []).map((l: Json) => l.activeState.listener);
    else if (type.endsWith('RoutesConfigDump'))
      out.routes = (c.dynamicRouteConfigs ?? []).map((r: Json) => r.routeConfig);
    else if (type.endsWith('ClustersConfigDump'))
      out.clusters = (c.dynamicActiveClusters ?? []).map((x: Json) => x.cluster);
    else if (type.endsWith('EndpointsConfigDump'))
      out.endpoints = (c.dynamicEndpointConfigs ?? []).map((e: Json) => e.endpointConfig);
  }
  return out;
}

const strip = (o: Json): Json => {
  const { '@type': _t, ...rest } = o;
  return rest;
};

/** A static bootstrap holding everything the dump's Envoy would run. */
export function staticBootstrap(d: XdsDump): Json {
  const boot = structuredClone(d.bootstrap);
  // The ADS connection to Envoy Gateway (and its TLS files) is what is being replaced.
  delete boot.dynamicResources;
  // EG's proxies get their node id and cluster on the command line (--service-node,
  // --service-cluster); the local_cluster the bootstrap names needs them.
  boot.node = { ...boot.node, id: 'lm-gate-validate', cluster: 'lm-gate-validate' };
  const staticClusters = ((boot.staticResources?.clusters ?? []) as Json[]).filter((c) => c.name !== 'xds_cluster');
  const routes = new Map(d.routes.map((r) => [r.name as string, strip(r)]));
  const endpoints = new Map(d.endpoints.map((e) => [e.clusterName as string, strip(e)]));
  const listeners = d.listeners.map((l) => {
    const listener = strip(structuredClone(l));
    const chains = [
      ...((listener.filterChains ?? []) as Json[]),
      ...(listener.defaultFilterChain ? [listener.defaultFilterChain] : []),
    ];
    for (const chain of chains) {
      for (const f of (chain.filters ?? []) as Json[]) {
        const hcm = f.typedConfig;
        if (!hcm?.rds) continue;
        const name = hcm.rds.routeConfigName as string;
        const rc = routes.get(name);
        if (!rc) throw new Error(`listener ${listener.name} names route config ${name}, which the dump lacks`);
        delete hcm.rds;
        hcm.routeConfig = rc;
      }
    }
    return listener;
  });
  const clusters = d.clusters.map((c) => {
    const cluster = strip(structuredClone(c));
    if (cluster.type === 'EDS') {
      const name = (cluster.edsClusterConfig?.serviceName as string | undefined) ?? cluster.name;
      const la = endpoints.get(name);
      if (!la) throw new Error(`EDS cluster ${cluster.name} has no endpoints in the dump`);
      delete cluster.edsClusterConfig;
      cluster.type = 'STATIC';
      cluster.loadAssignment = la;
    }
    return cluster;
  });
  boot.staticResources = { listeners, clusters: [...staticClusters, ...clusters] };
  return devStdoutToNull(boot);
}

/** EG's access logs write to /dev/stdout, which Envoy opens even in validate mode; under a test
 * runner Envoy's stdout is a socket, which cannot be opened by path (ENXIO). /dev/null is the same
 * file access logger, so the check is unchanged. */
function devStdoutToNull(v: any): any {
  if (Array.isArray(v)) return v.map(devStdoutToNull);
  if (v === null || typeof v !== 'object') return v;
  for (const [k, x] of Object.entries(v)) v[k] = k === 'path' && x === '/dev/stdout' ? '/dev/null' : devStdoutToNull(x);
  return v;
}

/** lowerCamelCase keys as snake_case (protobuf JSON names back to field names), so EG's output
 * compares with our YAML. Values are left alone. */
export function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [
      k.startsWith('@') ? k : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      snakeKeys(x),
    ]),
  );
}
