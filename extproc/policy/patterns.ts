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
  const re = wildcardRegExp(wild);
  return (v) => exact.has(v) || re.test(v);
}

/** One anchored expression for `*` patterns: `*` is any run, every other character itself. */
export function wildcardRegExp(patterns: readonly string[]): RegExp {
  return new RegExp(
    `^(?:${patterns
      .map((p) =>
        p
          .split('*')
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*'),
      )
      .join('|')})$`,
  );
}
