// The gate's DLP engine: the dlp config's default policy compiled once per config snapshot
// (extproc/dlp/scanner.ts), behind the port the stages use, with one pseudonym map per request.
import type { Config } from '../../config/schema.ts';
import { mask, PseudonymMap, placeholderTail, restore } from '../actions.ts';
import { compileDlp, type Scanner } from '../scanner.ts';
import { DlpStreamOverflow } from '../stream.ts';
import {
  type DlpEngine,
  type DlpFinding,
  DlpHoldOverflow,
  type DlpSession,
  type DlpTextStream,
} from './engine-port.ts';
import type { DlpGateSetup } from './request-stage.ts';

/** Called by each DLP stage's create(), once per config snapshot: the policy is compiled there,
 * never per request. The request stage's pseudonym session is the one the response restores. */
export function dlpSetup(config: Config): DlpGateSetup {
  const dlp = config.dlp;
  if (dlp.inspect === 'off') return undefined;
  const policy = dlp.policies.find((p) => p.name === dlp.defaultPolicy)!;
  const scanner = compileDlp(policy);
  return {
    engine: engineOf(scanner),
    options: { onScanError: scanner.onError, scanBudgetMs: scanner.timeBudgetMs, response: dlp.inspect === 'both' },
    policy,
  };
}

export function engineOf(scanner: Scanner): DlpEngine {
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
    newSession: () => new Session(scanner.maskKeep),
  };
}

class Session implements DlpSession {
  private readonly map = new PseudonymMap();
  private readonly keep: number;
  constructor(keep: number) {
    this.keep = keep;
  }
  get issued(): boolean {
    return this.map.size > 0;
  }
  replace(value: string, f: DlpFinding): string {
    if (f.action === 'redact') return `[REDACTED:${f.type}]`;
    if (f.action === 'mask') return mask(value, this.keep);
    return this.map.placeholderFor(f.type, value);
  }
  restore(text: string): string {
    return restore(text, this.map);
  }
  restoreHoldBack(text: string): number {
    return placeholderTail(text);
  }
  reserve(text: string): void {
    this.map.reserve(text);
  }
}
