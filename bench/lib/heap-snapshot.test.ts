import { expect, it } from 'vitest';
import { type HeapSnapshot, heapKinds, perRequest } from './heap-snapshot.ts';

/** A snapshot in V8's layout: node fields type, name, self_size, edge_count; edge fields type,
 * name_or_index, to_node. */
function snapshot(nodes: [type: number, name: number, size: number, edges: [string, number][]][]): HeapSnapshot {
  const strings = ['', 'Object', 'RequestContext', 'hello', 'id', 'level', '__proto__', 'Array'];
  const flat: number[] = [];
  const edges: number[] = [];
  for (const [type, name, size, es] of nodes) {
    flat.push(type, name, size, es.length);
    for (const [et, en] of es) edges.push(et === 'property' ? 0 : 1, en, 0);
  }
  return {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'self_size', 'edge_count'],
        node_types: [['hidden', 'object', 'string', 'number']],
        edge_fields: ['type', 'name_or_index', 'to_node'],
        edge_types: [['property', 'internal']],
      },
    },
    nodes: flat,
    edges,
    strings,
  };
}

const idle = snapshot([
  [1, 2, 400, []],
  [2, 3, 20, []],
]);
const busy = snapshot([
  [1, 2, 400, []],
  [1, 2, 400, []],
  [1, 2, 400, []],
  [2, 3, 20, []],
  [2, 3, 30, []],
  [2, 3, 30, []],
  [
    1,
    1,
    40,
    [
      ['property', 4],
      ['property', 5],
      ['property', 6],
      ['internal', 4],
    ],
  ],
  [
    1,
    1,
    40,
    [
      ['property', 4],
      ['property', 5],
    ],
  ],
  [1, 7, 32, [['internal', 4]]],
]);

it('sums nodes by type and name, plain objects by their property names, strings as one kind', () => {
  const k = heapKinds(busy);
  expect(k.totalBytes).toBe(1392);
  expect(Object.fromEntries(k.kinds)).toEqual({
    'object:RequestContext': { count: 3, bytes: 1200 },
    'string:': { count: 3, bytes: 80 },
    'object:Object{id,level}': { count: 2, bytes: 80 },
    'object:Array{}': { count: 1, bytes: 32 },
  });
});

it('busy minus idle per request in flight, largest first', () => {
  const r = perRequest(heapKinds(idle), heapKinds(busy), 2, 3);
  expect(r.bytes).toBe((1392 - 420) / 2);
  expect(r.kinds).toEqual([
    { kind: 'object:RequestContext', count: 1, bytes: 400 },
    { kind: 'object:Object{id,level}', count: 1, bytes: 40 },
    { kind: 'string:', count: 1, bytes: 30 },
  ]);
});
