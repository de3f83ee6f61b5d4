// Wildcard patterns ("*", "llama-3.1-*") compiled once at config load into one matcher.
export type Matcher = (value: string) => boolean;

/** The matcher of a list that holds "*": one function, so callers can tell "everything" apart
 * (a model listing then needs no filtering). */
export const ANY: Matcher = () => true;

export function compilePatterns(patterns: readonly string[]): Matcher {
  if (patterns.includes('*')) return ANY;
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const wild = patterns.filter((p) => p.includes('*'));
  if (wild.length === 0) return (v) => exact.has(v);
  const matches = wildcardMatcher(wild);
  return (v) => exact.has(v) || matches(v);
}

/** A matcher for `*` patterns (`*` is any run, every other character itself), in time linear in
 * the value: the first and last pieces are a prefix and a suffix, the pieces between are found
 * leftmost in turn, which is a match whenever one exists. The value is the client's (a model
 * name): a regular expression of `.*` runs backtracked for a minute on a thousand characters. */
export function wildcardMatcher(patterns: readonly string[]): Matcher {
  const split = patterns.map((p) => p.split('*'));
  return (v) => {
    for (const pieces of split) if (globMatches(pieces, v)) return true;
    return false;
  };
}

function globMatches(pieces: readonly string[], v: string): boolean {
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (pieces.length === 1) return v === first;
  if (v.length < first.length + last.length || !v.startsWith(first) || !v.endsWith(last)) return false;
  const end = v.length - last.length;
  let at = first.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i]!;
    if (piece === '') continue;
    const found = v.indexOf(piece, at);
    if (found === -1 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}
