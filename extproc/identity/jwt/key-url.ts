// Which URLs the gate fetches signing keys from: the config's validation refuses the others, and
// the key source checks again what discovery hands it. Kept apart from the zod schema
// (jwt/config.ts), so the serving gate never loads zod.
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Why `url` may not be fetched for keys, or undefined when it may: https, or http to a
 * loopback host when the issuer explicitly allows it (a test IdP). */
export function keyUrlProblem(url: string, allowHttpLoopback: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (u.username !== '' || u.password !== '') return `"${url}" carries credentials`;
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && allowHttpLoopback && LOOPBACK_HOSTS.has(u.hostname)) return undefined;
  return allowHttpLoopback
    ? `"${url}" must be https, or http to 127.0.0.1, [::1] or localhost`
    : `"${url}" must be https (allowHttpLoopback permits http to a loopback test IdP)`;
}
