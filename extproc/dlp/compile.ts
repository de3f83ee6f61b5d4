// A DLP policy as written (tests, `lm-gate dlp scan`, the eval) compiled into a scanner: validated
// and defaulted by its zod schema first. The serving gate compiles validated config with
// scannerFor (dlp/scanner.ts) and never loads this module, nor zod.
import { type DlpPolicyConfig, type DlpPolicyInput, dlpPolicySchema } from './config.ts';
import { type Scanner, scannerFor } from './scanner.ts';

/** The scanner for one policy, from its config (defaults applied) or as written. */
export function compileDlp(policy: DlpPolicyConfig | DlpPolicyInput): Scanner {
  return scannerFor(dlpPolicySchema.parse(policy));
}
