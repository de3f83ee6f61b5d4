// Why a JWT was refused: one class per kind of failure, each a 401 invalid_token whose message
// names the class (so a client developer can tell an expired token from one for another
// audience) and never echoes the token or a claim value.
import { GateError } from '../../pipeline/errors.ts';

export const REJECTION_MESSAGES = {
  too_large: 'is larger than the gateway accepts',
  malformed: 'is not a well-formed compact JWS (three canonical base64url parts, JSON object header and payload)',
  duplicate_member: 'repeats a member in its header or payload',
  header: 'uses a header parameter the gateway refuses (crit, jku, x5u, jwk, x5c or b64)',
  unknown_issuer: 'comes from an issuer this gateway does not trust',
  algorithm: 'is signed with an algorithm its issuer is not allowed to use here',
  type: 'has a typ header that is not an accepted access-token type',
  unknown_key: 'is signed with a key its issuer does not publish',
  keys_unavailable: "could not be checked: its issuer's signing keys are not available",
  signature: 'has a signature that does not verify',
  missing_exp: 'has no exp (expiry) claim',
  bad_claim: 'has an exp, nbf, iat or aud claim of the wrong type',
  expired: 'has expired',
  not_yet_valid: 'is not valid yet (nbf)',
  issued_in_future: 'was issued in the future (iat)',
  audience: 'is not meant for this gateway (aud)',
  principal: 'does not name the caller',
} as const;

export type RejectionReason = keyof typeof REJECTION_MESSAGES;

/** A 401 invalid_token that remembers its reason, for the debug log. */
export class JwtRejection extends GateError {
  readonly reason: RejectionReason;
  constructor(reason: RejectionReason, detail?: string) {
    super('invalid_token', `Invalid token: it ${REJECTION_MESSAGES[reason]}${detail ? `: ${detail}` : ''}.`);
    this.reason = reason;
  }
}

export function reject(reason: RejectionReason, detail?: string): JwtRejection {
  return new JwtRejection(reason, detail);
}
