// The hold-back invariant, for every split: the joined output equals the whole text with its
// findings replaced and pseudonyms restored, and no byte of a match is released before its
// match is decided.
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/harness/dlp-test-engine.ts';
import type { DlpAction } from './engine-port.ts';
import { HOLD_CAP_TYPE, StreamGuard } from './stream-guard.ts';

const ACTIONS: Partial<Record<string, DlpAction>> = { EMAIL: 'redact', US_SSN: 'mask', MRN: 'pseudonymise' };

const TEXTS = [
  'Write to jane.doe@example.com today.',
  'SSN 123-45-6789, and again 987-65-4321',
  'jane@x.io',
  'Emoji 😀 before a@b.co and 世界 after',
  'Your record [MRN_1] is on file; see [MRN_1].',
  'no findings at all, just words',
  'key -----BEGIN PRIVATE KEY-----\nMIIEabc\n-----END PRIVATE KEY----- done',
];

/** All splits of `text` into up to three pieces (every one- and two-cut position). */
function* splits(text: string): Generator<string[]> {
  yield [text];
  for (let i = 1; i < text.length; i++) {
    yield [text.slice(0, i), text.slice(i)];
    for (let j = i + 1; j < text.length; j += 3) yield [text.slice(0, i), text.slice(i, j), text.slice(j)];
  }
}

function run(pieces: string[], opts: { maxHold?: number; seed?: string } = {}) {
  const engine = testEngine({ ...ACTIONS, PRIVATE_KEY: 'redact' }, { maxHold: opts.maxHold });
  const session = engine.newSession();
  // The request issued MRN_1 for this value; the response may write the placeholder.
  session.replace('MRN-424242', { type: 'MRN', start: 0, end: 10, dataClass: 'PHI', action: 'pseudonymise' });
  const found: [string, number, number][] = [];
  const g = new StreamGuard(engine.scanner, session, (f) => found.push([f.type, f.start, f.end]));
  const out: string[] = [];
  for (const p of pieces) {
    const r = g.push(p);
    if (r.blocked) return { out, blocked: r.blocked.type, found };
    out.push(r.text);
  }
  const last = g.flush();
  if (last.blocked) return { out, blocked: last.blocked.type, found };
  out.push(last.text);
  return { out, blocked: undefined, found };
}

describe('StreamGuard', () => {
  for (const text of TEXTS) {
    it(`releases the same redacted text for every split: ${JSON.stringify(text.slice(0, 24))}`, () => {
      const whole = run([text]);
      const expected = whole.out.join('');
      const values = ['jane.doe@example.com', '123-45-6789', 'jane@x.io', 'a@b.co', 'MIIEabc'].filter((v) =>
        text.includes(v),
      );
      for (const pieces of splits(text)) {
        const r = run(pieces);
        expect(r.out.join(''), JSON.stringify(pieces)).toBe(expected);
        expect(r.found).toEqual(whole.found);
        // Nothing matched leaks even as a fragment: no released piece ends with a proper
        // prefix of a matched value that the next piece then completes.
        let sent = '';
        for (const piece of r.out) {
          sent += piece;
          for (const v of values) expect(sent.includes(v)).toBe(false);
        }
      }
    });
  }

  it('redacts, masks and restores as the engine says', () => {
    expect(run(['Write to jane.doe@example.com today.']).out.join('')).toBe('Write to [REDACTED:EMAIL] today.');
    expect(run(['SSN 123-45-6789']).out.join('')).toBe('SSN *******6789');
    expect(run(['rec [MRN_', '1] ok']).out.join('')).toBe('rec MRN-424242 ok');
  });

  it('never restores a placeholder the session did not issue', () => {
    expect(run(['see [MRN_2] and [EMAIL_1]']).out.join('')).toBe('see [MRN_2] and [EMAIL_1]');
  });

  it('holds an open PEM block until its end line, and fails closed past the cap', () => {
    const engine = testEngine();
    const g = new StreamGuard(engine.scanner, undefined, () => {});
    const released = ['ok -----BEGIN PRIVATE KEY-----\n', 'MIIE'.repeat(10), '\n-----END PRIVATE'].map(
      (p) => g.push(p).text,
    );
    expect(released.join('')).toBe('ok ');
    expect(g.push(' KEY----- after').text).toBe('[REDACTED:PRIVATE_KEY] ');
    const capped = run(['-----BEGIN PRIVATE KEY-----\n', 'MIIE'.repeat(400)], { maxHold: 1000 });
    expect(capped.blocked).toBe(HOLD_CAP_TYPE);
    expect(capped.out.join('')).toBe('');
  });

  it('never splits a surrogate pair', () => {
    const r = run(['a 😀', 'b']);
    for (const piece of r.out) expect(/[\ud800-\udbff]$/.test(piece)).toBe(false);
  });
});
