// The attacker's request bodies for `npm run bench:isolation`: valid JSON chat completions,
// each as close to the gate's request-body limit as it gets without passing it, each built to
// make one JSON.parse as expensive as possible in a different way. All put the payload in
// messages[0].content, which the gate's API-shape check does not look inside.

export const BODY_IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'x'] as const;
export type BodyId = (typeof BODY_IDS)[number];

export const BODY_DESCRIPTIONS: Record<BodyId, string> = {
  a: 'content = one array nested as deep as the limit allows: [[[[…]]]] (about 2 million levels)',
  b: 'content = an array of arrays nested to the depth limit (document depth exactly the limit), repeated: [[[…1…]]],[[[…1…]]],…',
  c: 'content = many tiny objects: [{"a":1,"b":2},…] (about 300 000)',
  d: 'content = one long string of \\uXXXX escapes (surrogate pairs included), raw multibyte UTF-8 and short escapes',
  e: 'content = a flat array of numbers: [1,1,1,…] (about 2 million)',
  f: 'content = one object with distinct keys: {"k0":0,"k1":0,…} (about 400 000 keys; shallow, passes any depth bound)',
  x: 'control, not an attack: content = one string of plain ASCII, the cheapest body of this size to parse; what carrying 4 MiB through Envoy and the gate costs by itself',
};

/** Depth of the wrapper around the content: root object, messages array, message object. */
const WRAPPER_DEPTH = 3;
const PREFIX = '{"model":"mock-small","messages":[{"role":"user","content":';
const SUFFIX = '}],"max_tokens":16}';

/** `content` items joined by commas inside open/close, as many as fit in `room` bytes. */
function fill(open: string, close: string, room: number, item: (i: number) => string): string {
  const parts: string[] = [];
  let used = open.length + close.length;
  for (let i = 0; ; i++) {
    const s = item(i);
    const cost = Buffer.byteLength(s) + (i > 0 ? 1 : 0);
    if (used + cost > room) break;
    parts.push(s);
    used += cost;
  }
  return `${open}${parts.join(',')}${close}`;
}

/** The content value of body `id`, at most `room` bytes of JSON text. */
function content(id: BodyId, room: number, depthLimit: number): string {
  switch (id) {
    case 'a': {
      const n = Math.floor(room / 2);
      return '['.repeat(n) + ']'.repeat(n);
    }
    case 'b': {
      // The content array is one level, each unit fills the rest up to the depth limit.
      const u = Math.max(1, depthLimit - WRAPPER_DEPTH - 1);
      const unit = `${'['.repeat(u)}1${']'.repeat(u)}`;
      return fill('[', ']', room, () => unit);
    }
    case 'c':
      return fill('[', ']', room, () => '{"a":1,"b":2}');
    case 'd': {
      // Every kind of work a JSON string can ask for: \u escapes (a surrogate pair among them),
      // raw 2-, 3- and 4-byte UTF-8 sequences, and short escapes.
      const unit = '\\u00e9\\u4e2d\\ud83d\\ude00é中😀\\n\\"\\\\\\t';
      const body: string[] = [];
      let used = 2;
      const cost = Buffer.byteLength(unit);
      while (used + cost <= room) {
        body.push(unit);
        used += cost;
      }
      return `"${body.join('')}${'x'.repeat(room - used)}"`;
    }
    case 'e':
      return fill('[', ']', room, () => '1');
    case 'f':
      // Not "0", "1"…: integer-like keys are array indices to V8, stored as cheap elements.
      return fill('{', '}', room, (i) => `"k${i.toString(36)}":0`);
    case 'x':
      return `"${'x'.repeat(room - 2)}"`;
  }
}

/** Body `id` as a whole request body of at most `limit` bytes (the gate refuses more). */
export function attackerBody(id: BodyId, limit: number, depthLimit: number): Buffer {
  const room = limit - Buffer.byteLength(PREFIX) - Buffer.byteLength(SUFFIX);
  return Buffer.from(PREFIX + content(id, room, depthLimit) + SUFFIX);
}

/** Deepest nesting of arrays and objects in a JSON text (strings skipped). */
export function jsonDepth(text: Buffer): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
