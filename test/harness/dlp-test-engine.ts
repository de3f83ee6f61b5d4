// A tiny DLP engine for the gate's DLP stage tests (the real detectors live in extproc/dlp and are
// tested there): e-mail addresses, dashed US SSNs, AKIA access keys, MRN-123456 medical record
// numbers (PHI), PEM private keys and 16-digit card numbers starting with 4, each with the action the test gives. Its stream follows the
// engine's contract conservatively: it holds the trailing token that could still grow into a
// match, or everything from an unclosed PEM header.
import {
  type DlpAction,
  type DlpEngine,
  type DlpFinding,
  DlpHoldOverflow,
  type DlpSession,
  type DlpStreamStep,
  type DlpTextStream,
} from '../../extproc/dlp/gate/engine-port.ts';

const DETECTORS: { type: string; dataClass: string; re: RegExp }[] = [
  { type: 'EMAIL', dataClass: 'PII', re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g },
  { type: 'US_SSN', dataClass: 'PII', re: /\b\d{3}-\d{2}-\d{4}\b/g },
  { type: 'AWS_ACCESS_KEY', dataClass: 'SECRET', re: /\bAKIA[0-9A-Z]{16}\b/g },
  { type: 'MRN', dataClass: 'PHI', re: /\bMRN-\d{6}\b/g },
  { type: 'PRIVATE_KEY', dataClass: 'SECRET', re: /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/g },
  { type: 'CREDIT_CARD', dataClass: 'PCI', re: /\b4\d{15}\b/g },
];
const ZERO_WIDTH = /^[\u200b-\u200d\u2060\ufeff]$/;
const PEM_BEGIN = '-----BEGIN';
const PEM_END = '-----END PRIVATE KEY-----';

type Scan = (text: string) => DlpFinding[];

export function testEngine(
  actions: Partial<Record<string, DlpAction>> = {},
  opts: { failOn?: string; maxHold?: number } = {},
): DlpEngine {
  const scan: Scan = (text) => {
    if (opts.failOn !== undefined && text.includes(opts.failOn)) throw new Error('test engine failure');
    // Zero-width characters are removed before matching; offsets map back to the raw text.
    const map: number[] = [];
    let clean = '';
    for (let i = 0; i < text.length; i++) {
      if (ZERO_WIDTH.test(text[i]!)) continue;
      map.push(i);
      clean += text[i];
    }
    const out: DlpFinding[] = [];
    for (const d of DETECTORS) {
      for (const m of clean.matchAll(d.re)) {
        const start = map[m.index]!;
        const end = map[m.index + m[0].length - 1]! + 1;
        if (out.some((f) => f.start < end && start < f.end)) continue;
        out.push({ type: d.type, dataClass: d.dataClass, start, end, action: actions[d.type] ?? 'redact' });
      }
    }
    return out.sort((a, b) => a.start - b.start);
  };
  return {
    scanner: { scan, stream: () => new HoldBackStream(scan, opts.maxHold ?? 1 << 16) },
    newSession: () => testSession(),
  };
}

/** Trailing units that could still be (the start of) a match. */
function holdBack(text: string): number {
  const begin = text.lastIndexOf(PEM_BEGIN);
  if (begin !== -1 && text.indexOf(PEM_END, begin) === -1) return text.length - begin;
  // The trailing run of characters a match could still continue (no whitespace in any).
  let i = text.length;
  while (i > 0 && /[^\s]/.test(text[i - 1]!)) i--;
  return text.length - i;
}

/** The streaming contract over scan(): rescan what is undecided, decide all but the tail that
 * could still grow into a match and any finding reaching into it. */
class HoldBackStream implements DlpTextStream {
  private buf = '';
  private base = 0;
  private readonly scan: Scan;
  private readonly maxHold: number;
  constructor(scan: Scan, maxHold: number) {
    this.scan = scan;
    this.maxHold = maxHold;
  }
  push(piece: string): DlpStreamStep {
    this.buf += piece;
    return this.step(false);
  }
  end(): DlpStreamStep {
    return this.step(true);
  }
  private step(final: boolean): DlpStreamStep {
    const found = this.scan(this.buf);
    let cut = final ? this.buf.length : this.buf.length - holdBack(this.buf);
    for (const f of found) if (f.start < cut && f.end > cut) cut = f.start;
    if (this.buf.length - cut > this.maxHold) throw new DlpHoldOverflow();
    const findings = found
      .filter((f) => f.end <= cut)
      .map((f) => ({ ...f, start: f.start + this.base, end: f.end + this.base }));
    this.buf = this.buf.slice(cut);
    this.base += cut;
    return { decided: this.base, findings };
  }
}

function testSession(): DlpSession {
  const reserved = new Set<string>();
  const byValue = new Map<string, string>();
  const byPlaceholder = new Map<string, string>();
  const counts = new Map<string, number>();
  return {
    get issued() {
      return byPlaceholder.size > 0;
    },
    reserve(text: string): void {
      for (const m of text.matchAll(/\[[A-Z_]+_\d+\]/g)) if (!byPlaceholder.has(m[0])) reserved.add(m[0]);
    },
    replace(value: string, f: DlpFinding): string {
      if (f.action === 'redact') return `[REDACTED:${f.type}]`;
      if (f.action === 'mask') return '*'.repeat(Math.max(0, value.length - 4)) + value.slice(-4);
      let p = byValue.get(value);
      if (p === undefined) {
        let n = (counts.get(f.type) ?? 0) + 1;
        while (reserved.has(`[${f.type}_${n}]`)) n++;
        counts.set(f.type, n);
        p = `[${f.type}_${n}]`;
        byValue.set(value, p);
        byPlaceholder.set(p, value);
      }
      return p;
    },
    restore(text: string): string {
      if (byPlaceholder.size === 0 || !text.includes('[')) return text;
      return text.replace(/\[[A-Z_]+_\d+\]/g, (p) => byPlaceholder.get(p) ?? p);
    },
    restoreHoldBack(text: string): number {
      const open = text.lastIndexOf('[');
      if (open === -1 || text.indexOf(']', open) !== -1) return 0;
      return text.length - open <= 40 ? text.length - open : 0;
    },
  };
}
