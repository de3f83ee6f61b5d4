// V8 heap snapshots (.heapsnapshot JSON) summed by kind of object, and two of them compared per
// request: what a request keeps alive while it waits (bench:inflight). A snapshot holds only
// live objects (V8 collects before taking it), so busy minus idle, over the requests in flight,
// is the state each one keeps: what every scavenge copies while it lives.

/** The parts of a .heapsnapshot this reads. */
export interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapKinds {
  /** Self bytes of every node. */
  totalBytes: number;
  /** `<type>:<name>` to its count and self bytes. */
  kinds: Map<string, { count: number; bytes: number }>;
}

/** Strings' and numbers' names are their values: summed as one kind each. */
const VALUE_TYPES = new Set(['string', 'concatenated string', 'sliced string', 'number', 'bigint']);

/** Sums a snapshot's nodes by type and constructor name. A plain object or array is named by
 * its first property names (`Object{id,level,unit}`), so the objects of one literal shape sum
 * together and can be found in the code. */
export function heapKinds(s: HeapSnapshot): HeapKinds {
  const m = s.snapshot.meta;
  const nf = m.node_fields.length;
  const ti = m.node_fields.indexOf('type');
  const ni = m.node_fields.indexOf('name');
  const si = m.node_fields.indexOf('self_size');
  const ci = m.node_fields.indexOf('edge_count');
  const ef = m.edge_fields.length;
  const eti = m.edge_fields.indexOf('type');
  const eni = m.edge_fields.indexOf('name_or_index');
  const types = m.node_types[0];
  const edgeTypes = m.edge_types[0];
  const kinds = new Map<string, { count: number; bytes: number }>();
  let totalBytes = 0;
  let edge = 0;
  for (let i = 0; i < s.nodes.length; i += nf) {
    const type = types[s.nodes[i + ti]!]!;
    let name = VALUE_TYPES.has(type) ? '' : s.strings[s.nodes[i + ni]!]!;
    const edges = s.nodes[i + ci]!;
    if (type === 'object' && (name === 'Object' || name === 'Array')) {
      const props: string[] = [];
      for (let e = edge; e < edge + edges * ef && props.length < 6; e += ef)
        if (edgeTypes[s.edges[e + eti]!] === 'property') {
          const p = s.strings[s.edges[e + eni]!]!;
          if (p !== '__proto__') props.push(p);
        }
      name = `${name}{${props.join(',')}}`;
    }
    edge += edges * ef;
    const key = `${type}:${name.slice(0, 80)}`;
    const bytes = s.nodes[i + si]!;
    const k = kinds.get(key);
    if (k === undefined) kinds.set(key, { count: 1, bytes });
    else {
      k.count++;
      k.bytes += bytes;
    }
    totalBytes += bytes;
  }
  return { totalBytes, kinds };
}

export interface PerRequestKind {
  kind: string;
  /** Objects of this kind per request in flight (busy minus idle, over n). */
  count: number;
  bytes: number;
}

/** Busy minus idle per request in flight, the kinds that grew most first. */
export function perRequest(
  idle: HeapKinds,
  busy: HeapKinds,
  n: number,
  top: number,
): { bytes: number; kinds: PerRequestKind[] } {
  const kinds: PerRequestKind[] = [];
  for (const [kind, b] of busy.kinds) {
    const a = idle.kinds.get(kind) ?? { count: 0, bytes: 0 };
    kinds.push({ kind, count: (b.count - a.count) / n, bytes: (b.bytes - a.bytes) / n });
  }
  kinds.sort((x, y) => y.bytes - x.bytes);
  return { bytes: (busy.totalBytes - idle.totalBytes) / n, kinds: kinds.slice(0, top) };
}
