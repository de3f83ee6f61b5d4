// Typed per-request state for stages. A stage declares its slot once, at module level, and reads
// and writes it on any context: every context has the same shape (one array), so V8 keeps one
// hidden class for all of them, and nothing outlives the request (unlike a WeakMap keyed by the
// context, which also costs a hash lookup per access).
//
//   const meter = defineSlot<UsageReader>('metering.usage');
//   ctx.set(meter, reader); … ctx.get(meter)?.push(chunk);

export interface Slot<T> {
  readonly name: string;
  readonly index: number;
  /** Never read: it carries T so get() and set() are typed. */
  readonly _type?: T;
}

let next = 0;
const names = new Set<string>();

export function defineSlot<T>(name: string): Slot<T> {
  // Two modules claiming one name is a mistake a test should catch, not a silent share.
  if (names.has(name)) throw new Error(`slot "${name}" is defined twice`);
  names.add(name);
  return { name, index: next++ };
}
