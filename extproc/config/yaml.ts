// YAML text to a plain value, with syntax errors as compilers print them (FILE:LINE:COL:
// message), so terminals and editors jump to the spot. JSON is YAML, so a JSON file reads too.
// Repeated keys are errors: which one wins would be a guess.
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from './config-error.ts';

/** The document's value, or undefined when the text holds no document (empty, only comments). */
export function readYaml(text: string, source: string, what = 'invalid configuration'): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return `${source}:${line}:${col}: ${e.message}`;
    });
    throw new ConfigError(source, problems, problemList(source, what, problems));
  }
  return doc.contents === null ? undefined : (doc.toJS() as unknown);
}

/** "FILE: invalid configuration" and one indented line per problem. */
export function problemList(source: string, what: string, problems: readonly string[]): string {
  return `${source}: ${what}\n${problems.map((p) => `  - ${p}`).join('\n')}`;
}
