// The gate's DLP engines: each policy the config can pick (dlp.defaultPolicy and those dlp.assign
// names) compiled once per config snapshot (extproc/dlp/scanner.ts), behind the port the stages
// use, with one pseudonym map per request.
import type { Config } from '../../config/schema.ts';
import { mask, PseudonymMap, placeholderTail, restore } from '../actions.ts';
import type { DlpPolicyConfig } from '../config.ts';
import { compileAssignment } from '../picker.ts';
import { type Scanner, scannerFor } from '../scanner.ts';
import { DlpStreamOverflow } from '../stream.ts';
import {
  type DlpEngine,
  type DlpFinding,
  DlpHoldOverflow,
  type DlpSession,
  type DlpTextStream,
} from './engine-port.ts';
import type { DlpGateSetup, DlpPolicySetup } from './request-stage.ts';

/** One setup per config snapshot, shared by both DLP stages' create(). */
const setups = new WeakMap<Config, DlpGateSetup>();

/** Called by each DLP stage's create(), once per config snapshot: the policies are compiled
 * there, never per request. The request stage's pseudonym session is the one the response
 * restores, under the policy the request stage picked. */
export function dlpSetup(config: Config): DlpGateSetup {
  if (setups.has(config)) return setups.get(config);
  const setup = buildSetup(config);
  setups.set(config, setup);
  return setup;
}

function buildSetup(config: Config): DlpGateSetup {
  const dlp = config.dlp;
  if (dlp.inspect === 'off') return undefined;
  const compile = (policy: DlpPolicyConfig): DlpPolicySetup => {
    const scanner = scannerFor(policy);
    warm(scanner);
    return {
      engine: engineOf(scanner),
      options: { onScanError: scanner.onError, scanBudgetMs: scanner.timeBudgetMs, response: dlp.inspect === 'both' },
      policy,
    };
  };
  const byName = new Map<string, DlpPolicySetup>();
  for (const name of new Set([dlp.defaultPolicy, ...dlp.assign.map((a) => a.policy)]))
    byName.set(name, compile(dlp.policies.find((p) => p.name === name)!));
  const fallback = byName.get(dlp.defaultPolicy)!;
  // No entries: no picker, and a request pays nothing for choosing.
  if (dlp.assign.length === 0) return fallback;
  const pickName = compileAssignment(dlp.assign, dlp.defaultPolicy);
  return { ...fallback, pick: (principal) => byName.get(pickName(principal))! };
}

/** One text that reaches every detector's validator. The first scan in a process pays for lazy
 * work (phone metadata, regex compilation: ~50 ms measured), which would otherwise land on the
 * first requests, and under load past Envoy's message timeout. Paid here, at config load. */
const WARM_TEXT =
  'Mail jane@example.com or call +44 20 7946 0958 / (415) 555-0132; card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, ' +
  'SSN 212-67-4391, NHS number 943 476 5919, date of birth 1 October 1980, host 10.1.2.3 and 2001:db8::1, ' +
  'key AKIAQ3EGRZ7XKBN2LM4P, aws_secret_access_key = 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, token ghp_0000, ' +
  'postgres://app:s3cret@db.internal:5432/main, eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc';

function warm(scanner: Scanner): void {
  scanner.scan(WARM_TEXT);
  const s = scanner.stream();
  s.push(WARM_TEXT);
  s.end();
}

export function engineOf(scanner: Scanner): DlpEngine {
  const redactions = new Redactions();
  return {
    scanner: {
      scan: (text) => scanner.scan(text),
      stream: (): DlpTextStream => {
        const s = scanner.stream();
        return {
          push(piece) {
            try {
              return s.push(piece);
            } catch (err) {
              if (err instanceof DlpStreamOverflow) throw new DlpHoldOverflow();
              throw err;
            }
          },
          end: () => s.end(),
        };
      },
    },
    newSession: () => new Session(scanner.maskKeep, redactions),
  };
}

/** `[REDACTED:TYPE]` per finding type, made once per engine: the types are the policy's
 * detectors and rules, so the map is bounded by the config. */
class Redactions {
  private readonly byType = new Map<string, string>();

  of(type: string): string {
    let r = this.byType.get(type);
    if (r === undefined) {
      r = `[REDACTED:${type}]`;
      this.byType.set(type, r);
    }
    return r;
  }
}

class Session implements DlpSession {
  /** Made by the first pseudonym or typed placeholder: most requests need neither. */
  private pseudonyms: PseudonymMap | undefined;
  private readonly keep: number;
  private readonly redactions: Redactions;
  constructor(keep: number, redactions: Redactions) {
    this.keep = keep;
    this.redactions = redactions;
  }
  private get map(): PseudonymMap {
    this.pseudonyms ??= new PseudonymMap();
    return this.pseudonyms;
  }
  get issued(): boolean {
    return this.pseudonyms !== undefined && this.pseudonyms.size > 0;
  }
  replace(value: string, f: DlpFinding): string {
    if (f.action === 'redact') return this.redactions.of(f.type);
    if (f.action === 'mask') return mask(value, this.keep);
    return this.map.placeholderFor(f.type, value);
  }
  restore(text: string): string {
    return this.pseudonyms === undefined ? restore(text, EMPTY) : restore(text, this.pseudonyms);
  }
  restoreHoldBack(text: string): number {
    return placeholderTail(text);
  }
  reserve(text: string): void {
    // A text without a `[` reserves nothing (PseudonymMap.reserve): no map for it.
    if (this.pseudonyms !== undefined || text.includes('[')) this.map.reserve(text);
  }
}

/** What a session restores with before it made any pseudonym: nothing (never written to). */
const EMPTY = new PseudonymMap();
