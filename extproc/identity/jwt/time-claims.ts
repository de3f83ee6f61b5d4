// The registered claims every accepted token must satisfy (RFC 7519 §4.1), checked on the payload
// the strict parser already read: exp is required (a token that never expires is a key that
// cannot be revoked), nbf and iat are honoured with the clock tolerance, and iat in the future
// is refused (jose only checks iat's age when asked for a maximum), as is an aud that names none
// of the gate's audiences.
import type { RejectionReason } from './rejection.ts';

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function checkTimeAndAudience(
  payload: Readonly<Record<string, unknown>>,
  audiences: ReadonlySet<string>,
  nowSeconds: number,
  toleranceSeconds: number,
): RejectionReason | undefined {
  const { exp, nbf, iat, aud } = payload;
  if (exp === undefined) return 'missing_exp';
  if (!isTime(exp) || (nbf !== undefined && !isTime(nbf)) || (iat !== undefined && !isTime(iat))) return 'bad_claim';
  if (nowSeconds - toleranceSeconds >= exp) return 'expired';
  if (nbf !== undefined && nowSeconds + toleranceSeconds < nbf) return 'not_yet_valid';
  if (iat !== undefined && iat > nowSeconds + toleranceSeconds) return 'issued_in_future';
  if (typeof aud === 'string') return audiences.has(aud) ? undefined : 'audience';
  if (!Array.isArray(aud)) return aud === undefined ? 'audience' : 'bad_claim';
  for (const a of aud) if (typeof a !== 'string') return 'bad_claim';
  for (const a of aud) if (audiences.has(a)) return undefined;
  return 'audience';
}
