// The names policy rules match callers and requests by: the config's validation lists them in
// its errors, the rule matcher and the DLP assignment use them per request. Kept apart from the
// zod schema (policy/config.ts), so the serving gate never loads zod.
import { API_KINDS } from '../llm/apis.ts';

/** What `to.endpoints` may match: every API kind, and "unknown" for paths outside them
 * (reachable with unknownEndpoints: allow). */
export const RULE_ENDPOINTS: readonly string[] = [...API_KINDS, 'unknown'];
export const PRINCIPAL_METHODS = ['api_key', 'jwt', 'mtls'] as const;
