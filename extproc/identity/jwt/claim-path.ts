// Claim paths: where in a token's payload a principal field is read. A path is dot-separated
// member names (`realm_access.roles`); a name that itself holds dots or brackets, as namespaced
// claims do (`https://example.com/roles`), is written quoted in brackets, in JSON string
// syntax: `["https://example.com/roles"]`, `resource_access["my.client"].roles`. Paths are
// parsed once at config load; reading one is a loop over own properties.

export type ClaimPath = readonly string[];

/** The segments of a path, or an error message naming what is wrong. */
export function parseClaimPath(text: string): { path: ClaimPath } | { error: string } {
  const segments: string[] = [];
  let i = 0;
  // A segment starts at the beginning, after a '.', or at a '['.
  for (;;) {
    if (text[i] === '[') {
      const close = quotedEnd(text, i + 1);
      if (close === -1 || text[close + 1] !== ']') return { error: `unterminated ["…"] in claim path "${text}"` };
      let name: unknown;
      try {
        name = JSON.parse(text.slice(i + 1, close + 1));
      } catch {
        return { error: `invalid quoted name in claim path "${text}"` };
      }
      if (typeof name !== 'string' || name === '') return { error: `empty name in claim path "${text}"` };
      segments.push(name);
      i = close + 2;
    } else {
      let end = i;
      while (end < text.length && text[end] !== '.' && text[end] !== '[') end++;
      if (end === i) return { error: `empty name in claim path "${text}"` };
      segments.push(text.slice(i, end));
      i = end;
    }
    if (i === text.length) return { path: segments };
    if (text[i] === '.') {
      i++;
      if (i === text.length) return { error: `claim path "${text}" ends with "."` };
    } else if (text[i] !== '[') return { error: `unexpected "${text[i]}" in claim path "${text}"` };
  }
}

/** Index of the closing quote of a JSON string starting at `open`, or -1. */
function quotedEnd(text: string, open: number): number {
  if (text[open] !== '"') return -1;
  for (let j = open + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  return -1;
}

/** The value at `path`, or undefined. Only own members of plain objects are followed, so a
 * path can never reach a prototype (`__proto__`, `constructor`). */
export function readClaim(payload: Readonly<Record<string, unknown>>, path: ClaimPath): unknown {
  let value: unknown = payload;
  for (const name of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.hasOwn(value, name)) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

/** How a path is written back in messages and docs. */
export function formatClaimPath(path: ClaimPath): string {
  return path.map((s, i) => (/^[^.[\]"]+$/.test(s) ? (i === 0 ? s : `.${s}`) : `[${JSON.stringify(s)}]`)).join('');
}
