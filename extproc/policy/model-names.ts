// Model names as the servers behind the gate resolve them, for every decision that matches or
// counts a model (credential scopes, policy rules, tenant isolation, routes, limits, prices).
//
// Ollama (native API and its OpenAI-compatible one) resolves one model under many spellings:
// `llama3`, `llama3:latest`, `library/llama3`, `registry.ollama.ai/library/llama3:latest`, with a
// `https://` in front, a `+build` or `@digest` behind, and, on a case-insensitive disk or in
// newer versions, `LLAMA3`. Matched as written, each spelling was a way past a DENY rule, a
// tenant's isolation, a model's limit or its price. So a name is matched by its key: lower case,
// scheme, build and digest dropped, Ollama's defaults (host registry.ollama.ai, namespace library,
// tag latest) filled in and then left out. vLLM and TGI serve names exactly; two names that only
// Ollama would take for one are, for them, a name and one the server does not serve, so matching
// the key costs them nothing.
import { ANY, type Matcher, wildcardMatcher } from './patterns.ts';

const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';

/** The key a model name is matched by: `llama3:latest` for every spelling of it. A name with more
 * than three `/`-separated parts is only lower-cased (no server reads it as an Ollama name). */
export function modelKey(name: string): string {
  // One request asks for its key at every stage that matches or counts its model.
  if (name === lastName) return lastKey;
  const key = keyOf(name);
  lastName = name;
  lastKey = key;
  return key;
}

let lastName = '';
let lastKey = keyOf('');

function keyOf(name: string): string {
  // Ollama on Windows reads a backslash as the path separator it is there.
  let s = name.toLowerCase().replaceAll('\\', '/');
  const scheme = s.indexOf('://');
  if (scheme !== -1) s = s.slice(scheme + 3);
  // A digest, then a build, come last; neither names another model.
  const at = s.indexOf('@');
  if (at !== -1) s = s.slice(0, at);
  const plus = s.lastIndexOf('+');
  if (plus !== -1 && s.indexOf('/', plus) === -1) s = s.slice(0, plus);
  const parts = s.split('/');
  if (parts.length > 3) return s;
  let model = parts[parts.length - 1]!;
  if (!model.includes(':')) model = `${model}:${DEFAULT_TAG}`;
  const namespace = parts.length >= 2 ? parts[parts.length - 2]! : DEFAULT_NAMESPACE;
  const host = parts.length === 3 ? parts[0]! : DEFAULT_HOST;
  if (host !== DEFAULT_HOST) return `${host}/${namespace}/${model}`;
  return namespace === DEFAULT_NAMESPACE ? model : `${namespace}/${model}`;
}

/** A matcher of model names for a list of `*` patterns: a name matches when its key matches an
 * exact pattern's key, or a wildcard pattern (lower-cased, Ollama's default host and namespace
 * left out) matches its key or its lower-cased spelling. */
export function compileModelPatterns(patterns: readonly string[]): Matcher {
  if (patterns.includes('*')) return ANY;
  const exact = new Set(patterns.filter((p) => !p.includes('*')).map(modelKey));
  const wild = patterns.filter((p) => p.includes('*')).map(wildKey);
  if (wild.length === 0) return (v) => exact.has(modelKey(v));
  const matches = wildcardMatcher(wild);
  return (v) => {
    const key = modelKey(v);
    return exact.has(key) || matches(key) || matches(v.toLowerCase());
  };
}

/** A wildcard pattern as keys are written: lower case, without a scheme or Ollama's default host
 * and namespace. */
function wildKey(pattern: string): string {
  let p = pattern.toLowerCase().replaceAll('\\', '/');
  const scheme = p.indexOf('://');
  if (scheme !== -1) p = p.slice(scheme + 3);
  if (p.startsWith(`${DEFAULT_HOST}/`)) p = p.slice(DEFAULT_HOST.length + 1);
  if (p.startsWith(`${DEFAULT_NAMESPACE}/`)) p = p.slice(DEFAULT_NAMESPACE.length + 1);
  return p;
}
