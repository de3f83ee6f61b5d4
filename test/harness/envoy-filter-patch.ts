// An Istio EnvoyFilter's configPatches applied to a static Envoy bootstrap, the way istiod applies
// them to the listeners it generates, for the operations and matches our EnvoyFilters use:
//   LISTENER        MERGE           (match: context)
//   NETWORK_FILTER  MERGE           (match: listener.filterChain.filter.name)
//   HTTP_FILTER     INSERT_BEFORE   (match: listener.filterChain.filter.subFilter.name)
// MERGE follows protobuf merge semantics (messages merged field by field, repeated fields
// appended, scalars replaced). Anything else, and a patch that matches nothing, throws: a patch
// that would silently not apply must fail the check, not pass it.

type Json = Record<string, any>;

export type PatchContext = 'GATEWAY' | 'SIDECAR_INBOUND' | 'SIDECAR_OUTBOUND';

function protoMerge(into: Json, from: Json): Json {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (Array.isArray(v)) into[k] = [...(Array.isArray(cur) ? cur : []), ...structuredClone(v)];
    else if (v !== null && typeof v === 'object' && cur !== null && typeof cur === 'object' && !Array.isArray(cur))
      protoMerge(cur, v);
    else into[k] = structuredClone(v);
  }
  return into;
}

/** Applies every patch of `envoyFilter` whose context is `context` to `bootstrap` (in place). */
export function applyEnvoyFilter(bootstrap: Json, envoyFilter: Json, context: PatchContext): Json {
  const listeners = (bootstrap.static_resources?.listeners ?? []) as Json[];
  for (const [i, p] of ((envoyFilter.spec?.configPatches ?? []) as Json[]).entries()) {
    const where = `configPatches[${i}] (${p.applyTo} ${p.patch?.operation})`;
    const ctx = p.match?.context ?? 'ANY';
    if (ctx !== 'ANY' && ctx !== context) continue;
    const filterMatch = p.match?.listener?.filterChain?.filter as Json | undefined;
    let applied = 0;
    const chains = listeners.flatMap((l) => (l.filter_chains ?? []) as Json[]);
    if (p.applyTo === 'LISTENER' && p.patch.operation === 'MERGE') {
      for (const l of listeners) protoMerge(l, p.patch.value);
      applied = listeners.length;
    } else if (p.applyTo === 'NETWORK_FILTER' && p.patch.operation === 'MERGE' && filterMatch?.name) {
      for (const f of chains.flatMap((c) => (c.filters ?? []) as Json[])) {
        if (f.name !== filterMatch.name) continue;
        if (p.patch.value.typed_config?.['@type'] !== f.typed_config?.['@type'])
          throw new Error(`${where}: typed_config @type differs from the filter's`);
        protoMerge(f, p.patch.value);
        applied++;
      }
    } else if (p.applyTo === 'HTTP_FILTER' && p.patch.operation === 'INSERT_BEFORE' && filterMatch?.subFilter?.name) {
      for (const f of chains.flatMap((c) => (c.filters ?? []) as Json[])) {
        if (f.name !== filterMatch.name) continue;
        const httpFilters = f.typed_config.http_filters as Json[];
        const at = httpFilters.findIndex((h) => h.name === filterMatch.subFilter.name);
        if (at < 0) continue;
        httpFilters.splice(at, 0, structuredClone(p.patch.value));
        applied++;
      }
    } else {
      throw new Error(`${where}: not an operation this check applies`);
    }
    if (applied === 0) throw new Error(`${where}: matched nothing in the ${context} listeners`);
  }
  return bootstrap;
}
