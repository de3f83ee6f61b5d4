// Splices of the canonical request body, recorded by stages and applied once when the body is
// answered. Stages locate what they change with the spans the API-shape parse found; several
// stages may edit one body (a model alias rewritten by routing, stream_options added by
// metering), and spans stay valid because every edit is relative to the same parsed bytes and
// none is applied before the others are known. Re-serialising a parse instead would round
// integers above 2^53 and reorder nothing else we could promise to keep.

export interface BodyEdit {
  /** [start, end) of the canonical body (without its BOM), replaced by `insert`. */
  readonly start: number;
  readonly end: number;
  readonly insert: Buffer;
}

/** The body with every edit applied. Edits may not overlap (two stages rewriting the same bytes
 * is a pipeline bug, refused loudly rather than resolved by order); insertions at one offset
 * keep the order they were recorded in. */
export function applyBodyEdits(body: Buffer, edits: readonly BodyEdit[]): Buffer {
  // Stages record their edits in body order as a rule (DLP's many splices always): a stable sort
  // of an ordered list changes nothing, so only a list out of order is copied and sorted.
  const sorted = inOrder(edits) ? edits : [...edits].sort((a, b) => a.start - b.start);
  let at = 0;
  let length = body.length;
  // Indexed loops: once a request, and for-of allocated an iterator result per edit until the
  // function was optimised (bench:alloc).
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.start < at || e.end < e.start || e.end > body.length)
      throw new Error(`body edit [${e.start}, ${e.end}) overlaps another or lies outside the body`);
    length += e.insert.length - (e.end - e.start);
    at = e.end;
  }
  // Copied straight into the result: a subarray per piece for Buffer.concat was an object each.
  const out = Buffer.allocUnsafe(length);
  let pos = 0;
  at = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    pos += body.copy(out, pos, at, e.start);
    pos += e.insert.copy(out, pos);
    at = e.end;
  }
  body.copy(out, pos, at);
  return out;
}

function inOrder(edits: readonly BodyEdit[]): boolean {
  for (let i = 1; i < edits.length; i++) if (edits[i]!.start < edits[i - 1]!.start) return false;
  return true;
}
