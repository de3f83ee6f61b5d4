// A tiny DLP engine for the gate's DLP stage tests (the real detectors live in extproc/dlp and are
// tested there): e-mail addresses, dashed US SSNs, AKIA access keys, MRN-123456 medical record
// numbers (PHI) and PEM private keys, each with the action the test gives. Its holdBack is the
// conservative one the stream contract asks for: the trailing token that could still grow into a
// match, or everything from an unclosed PEM header.
import type { DlpAction, DlpEngine, DlpFinding, DlpSession } from '../../extproc/dlp/gate/engine-port.ts';

const DETECTORS: { type: string; dataClass: string; re: RegExp }[] = [
  { type: 'EMAIL', dataClass: 'PII', re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g },
  { type: 'US_SSN', dataClass: 'PII', re: /\b\d{3}-\d{2}-\d{4}\b/g },
  { type: 'AWS_ACCESS_KEY', dataClass: 'SECRET', re: /\bAKIA[0-9A-Z]{16}\b/g },
  { type: 'MRN', dataClass: 'PHI', re: /\bMRN-\d{6}\b/g },
  { type: 'PRIVATE_KEY', dataClass: 'SECRET', re: /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/g },
];
const ZERO_WIDTH = /[\u200b-\u200d\u2060\ufeff]/g;
const PEM_BEGIN = '-----BEGIN';

export function testEngine(
  actions: Partial<Record<string, DlpAction>> = {},
  opts: { failOn?: string } = {},
): DlpEngine {
  return {
    scanner: {
      lookBehind: 0,
      scan(text: string): DlpFinding[] {
        if (opts.failOn !== undefined && text.includes(opts.failOn)) throw new Error('test engine failure');
        // Zero-width characters are removed before matching; offsets map back to the raw text.
        const map: number[] = [];
        let clean = '';
        for (let i = 0; i < text.length; i++) {
          if (ZERO_WIDTH.test(text[i]!)) {
            ZERO_WIDTH.lastIndex = 0;
            continue;
          }
          map.push(i);
          clean += text[i];
        }
        map.push(text.length);
        const out: DlpFinding[] = [];
        for (const d of DETECTORS) {
          d.re.lastIndex = 0;
          for (const m of clean.matchAll(d.re)) {
            const start = map[m.index]!;
            const end = map[m.index + m[0].length - 1]! + 1;
            if (out.some((f) => f.start < end && start < f.end)) continue;
            out.push({ type: d.type, dataClass: d.dataClass, start, end, action: actions[d.type] ?? 'redact' });
          }
        }
        return out.sort((a, b) => a.start - b.start);
      },
      holdBack(text: string): number {
        const begin = text.lastIndexOf(PEM_BEGIN);
        if (begin !== -1 && text.indexOf('-----END', begin) === -1) return text.length - begin;
        // The trailing run of characters a match could still continue (no whitespace in any).
        let i = text.length;
        while (i > 0 && /[^\s]/.test(text[i - 1]!)) i--;
        return text.length - i;
      },
    },
    newSession: () => testSession(),
  };
}

function testSession(): DlpSession {
  const byValue = new Map<string, string>();
  const byPlaceholder = new Map<string, string>();
  const counts = new Map<string, number>();
  return {
    get issued() {
      return byPlaceholder.size > 0;
    },
    replace(value: string, f: DlpFinding): string {
      if (f.action === 'redact') return `[REDACTED:${f.type}]`;
      if (f.action === 'mask') return '*'.repeat(Math.max(0, value.length - 4)) + value.slice(-4);
      let p = byValue.get(value);
      if (p === undefined) {
        const n = (counts.get(f.type) ?? 0) + 1;
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
