import { describe, expect, it } from 'vitest';
import { applyActions, mask, PseudonymMap, placeholderTail, restore } from './actions.ts';
import { compileDlp } from './compile.ts';

const scanner = compileDlp({
  name: 'p',
  detectors: { EMAIL: 'pseudonymise', CREDIT_CARD: 'mask', US_SSN: 'redact', PHONE: 'warn', AWS_ACCESS_KEY: 'block' },
});

function apply(text: string, map = new PseudonymMap()) {
  return applyActions(text, scanner.scan(text), map);
}

describe('applyActions', () => {
  it('redacts, masks, pseudonymises, and leaves warn and block findings to the stage', () => {
    const text =
      'a@example.com paid with 4111 1111 1111 1111, SSN 536-22-1234, call +44 20 7946 0958, key AKIAZ3MSJV6WWQXWFT2K';
    expect(apply(text)).toEqual({
      text: '[EMAIL_1] paid with **** **** **** 1111, SSN [REDACTED:US_SSN], call +44 20 7946 0958, key AKIAZ3MSJV6WWQXWFT2K',
      placeholders: ['[EMAIL_1]'],
    });
  });

  it('gives one value one placeholder per request, and each value its own', () => {
    const map = new PseudonymMap();
    expect(apply('a@example.com, b@example.com, a@example.com', map).text).toBe('[EMAIL_1], [EMAIL_2], [EMAIL_1]');
    expect(apply('again b@example.com', map).text).toBe('again [EMAIL_2]');
    expect(apply('a@example.com', new PseudonymMap()).text).toBe('[EMAIL_1]');
  });

  it('offsets survive emoji and zero-width characters before the entity', () => {
    expect(apply('😀 x\u200b a@example.com 😀').text).toBe('😀 x\u200b [EMAIL_1] 😀');
  });

  it('returns the same string when nothing changes', () => {
    const text = 'nothing to see';
    expect(apply(text).text).toBe(text);
  });
});

describe('restore', () => {
  it('restores this request’s placeholders, including [EMAIL_1] next to [EMAIL_10]', () => {
    const map = new PseudonymMap();
    const emails = Array.from({ length: 10 }, (_, i) => `user${i + 1}@example.com`);
    const { text } = apply(emails.join(' '), map);
    expect(text.split(' ')[9]).toBe('[EMAIL_10]');
    expect(restore(`reply: ${text} and [EMAIL_1][EMAIL_10]`, map)).toBe(
      `reply: ${emails.join(' ')} and user1@example.comuser10@example.com`,
    );
  });

  it('never restores a placeholder the user typed', () => {
    const map = new PseudonymMap();
    // The user wrote [EMAIL_1] themselves; the real address gets another number.
    const { text } = apply('I am [EMAIL_1], write to a@example.com', map);
    expect(text).toBe('I am [EMAIL_1], write to [EMAIL_2]');
    expect(restore('Hello [EMAIL_1], I wrote to [EMAIL_2]', map)).toBe('Hello [EMAIL_1], I wrote to a@example.com');
  });

  it('leaves placeholders of another request alone', () => {
    const mine = new PseudonymMap();
    apply('a@example.com', mine);
    expect(restore('[EMAIL_1]', new PseudonymMap())).toBe('[EMAIL_1]');
    expect(restore('[EMAIL_2] [PHONE_1]', mine)).toBe('[EMAIL_2] [PHONE_1]');
  });

  it('placeholderTail says how much of a stream end could be a placeholder still arriving', () => {
    expect(placeholderTail('see [EMA')).toBe(4);
    expect(placeholderTail('see [EMAIL_1')).toBe(8);
    expect(placeholderTail('see [')).toBe(1);
    expect(placeholderTail('see [EMAIL_1] ok')).toBe(0);
    expect(placeholderTail('array [0')).toBe(0);
    expect(placeholderTail('plain')).toBe(0);
  });
});

describe('mask', () => {
  it('keeps a suffix and the separators', () => {
    expect(mask('536-22-1234', 4)).toBe('***-**-1234');
    expect(mask('AKIAZ3MSJV6WWQXWFT2K', 4)).toBe('****************FT2K');
    // Short values keep at most half.
    expect(mask('1234', 4)).toBe('**34');
    expect(mask('abc', 0)).toBe('***');
  });
});
