// The streaming contract (stream.ts): scanning a text in pieces finds exactly what scanning it
// whole finds, for every split position, and no piece of a finding is decided before the
// finding is.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { generateCorpus } from '../../test/dlp/corpus.ts';
import { compileDlp } from './compile.ts';
import type { Scanner } from './scanner.ts';
import { DlpStreamOverflow } from './stream.ts';
import type { Finding } from './types.ts';
import { base62 } from './validators.ts';

const GH = `ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy${base62(crc32('Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy'), 6)}`;
const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4Ka0bPq3sTt9yJ8mC2n\nR5vW1qL6oZ0dF3hG7kM4pN8rS2uV9wXy\n-----END RSA PRIVATE KEY-----';

const TEXTS = [
  'Hi, I am Jane (jane.doe@example.com), card 4111 1111 1111 1111, call +44 20 7946 0958.',
  'SSN: 536221234 and 536-22-1234; NHS number 943 476 5919 for the patient.',
  'IBAN GB82 WEST 1234 5698 7654 32 and DE89370400440532013000 then 10.0.0.1:8080 and [2001:db8::1]:443.',
  'She was born on 12 March 1985; {"dob": "1971-07-30"}; 出生日期：1990年1月2日 ok',
  `export AWS_ACCESS_KEY_ID=AKIAZ3MSJV6WWQXWFT2K\naws_secret_access_key = Tq3s8fJ1kP0Lm9Nb2Vc7Xz5Qw4Er6Ty8Ui0Op1As\ntoken ${GH}`,
  `config:\n  key: |\n${PEM}\nafter the key, sk_live_4eC39HqLyjWDarjtT1zdp7dc`,
  `{"k":"${PEM.replace(/\n/g, '\\n')}","jwt":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}`,
  'DATABASE_URL=postgres://app:S3cr3tPw@db.internal:5432/app and api_key = "q8Zr2LmN4vB7xC1pK9sT".',
  'emoji 😀 then AK\u200bIAZ3MSJV6WWQXWFT2K, ５３６-２２-１２３４ (SSN) and 🎉 a\u202elice@example.com 😀',
  'near misses: version 10.2.3.4, icon@2x.png, @alice, S3, C4, order 4155552671, 4111 1111 1111 1112 and 3f786850e387550fdab836ed7e6dc881de23001b',
  '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY----- and then 4012888888881881',
];

function streamed(scanner: Scanner, pieces: string[]): Finding[] {
  const s = scanner.stream();
  const out: Finding[] = [];
  let decided = 0;
  let fed = 0;
  for (const piece of pieces) {
    fed += piece.length;
    const step = s.push(piece);
    for (const f of step.findings) {
      // Every finding lies in the newly decided part.
      expect(f.start).toBeGreaterThanOrEqual(decided);
      expect(f.end).toBeLessThanOrEqual(step.decided);
    }
    expect(step.decided).toBeGreaterThanOrEqual(decided);
    expect(step.decided).toBeLessThanOrEqual(fed);
    decided = step.decided;
    out.push(...step.findings);
  }
  const last = s.end();
  expect(last.decided).toBe(fed);
  out.push(...last.findings);
  return out;
}

const scanner = compileDlp({ name: 'default' });
const custom = compileDlp({
  name: 'custom',
  patterns: [{ name: 'TICKET', regex: 'TCK [0-9]{3}-[0-9]{3}', maxLength: 16 }],
  wordLists: [{ name: 'CODENAME', words: ['blue falcon', 'Nightjar'] }],
});

describe('stream hold-back', () => {
  it.each(TEXTS.map((t, i) => [i, t] as const))(
    'text %i: every split in two finds what the whole scan finds',
    (_i, text) => {
      const whole = scanner.scan(text);
      for (let at = 0; at <= text.length; at++)
        expect(streamed(scanner, [text.slice(0, at), text.slice(at)])).toEqual(whole);
    },
  );

  it.each(TEXTS.map((t, i) => [i, t] as const))(
    'text %i: one character per push finds what the whole scan finds',
    (_i, text) => {
      expect(streamed(scanner, [...text.split('')])).toEqual(scanner.scan(text));
    },
  );

  it('seeded random splits into many pieces, all texts joined', () => {
    const text = TEXTS.join('\n');
    const whole = scanner.scan(text);
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let round = 0; round < 40; round++) {
      const pieces: string[] = [];
      for (let at = 0; at < text.length; ) {
        const n = 1 + Math.floor(rand() * 12);
        pieces.push(text.slice(at, at + n));
        at += n;
      }
      expect(streamed(scanner, pieces)).toEqual(whole);
    }
  });

  it('corpus samples: every split in two finds what the whole scan finds', () => {
    for (const { text } of generateCorpus(5, 60)) {
      const whole = scanner.scan(text);
      for (let at = 0; at <= text.length; at++)
        expect(streamed(scanner, [text.slice(0, at), text.slice(at)])).toEqual(whole);
    }
  });

  it('custom patterns and phrases across splits', () => {
    const text = 'ticket TCK 123-456 for the Blue Falcon and nightjar teams';
    const whole = custom.scan(text);
    expect(whole.map((f) => f.type)).toEqual(['TICKET', 'CODENAME', 'CODENAME']);
    for (let at = 0; at <= text.length; at++)
      expect(streamed(custom, [text.slice(0, at), text.slice(at)])).toEqual(whole);
  });

  it('holds back only the word in progress in plain prose', () => {
    const s = scanner.stream();
    const step = s.push('The quick brown fox jumps over the lazy dog and keeps going');
    expect(s.held).toBe('going'.length);
    expect(step.decided).toBe('The quick brown fox jumps over the lazy dog and keeps '.length);
    expect(s.push(' on.').findings).toEqual([]);
    expect(s.held).toBe(3);
  });

  it('holdBack(text) says how much of a text’s end a stream would hold', () => {
    expect(scanner.holdBack('all decided. ')).toBe(0);
    expect(scanner.holdBack('call me on +44 20 79')).toBe('+44 20 79'.length);
    expect(scanner.holdBack('card 4111 1111 ')).toBe('4111 1111 '.length);
    expect(scanner.holdBack('she was born on 12 Ma')).toBe('born on 12 Ma'.length);
    expect(scanner.holdBack('key: -----BEGIN RSA PRIV')).toBe('-----BEGIN RSA PRIV'.length);
  });

  it('holds a private key until its END line', () => {
    const s = scanner.stream();
    s.push('here: ');
    const begin = s.push('-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4Ka0bPq3sTt9yJ8mC2n\n');
    expect(begin.decided).toBe('here: '.length);
    s.push('R5vW1qL6oZ0dF3hG7kM4pN8rS2uV9wXy\n'.repeat(10));
    const end = s.push('-----END PRIVATE KEY----- done');
    expect(end.findings.map((f) => f.type)).toEqual(['PRIVATE_KEY']);
    expect(end.decided).toBeGreaterThan(end.findings[0]!.end);
  });

  it('fails closed when a private key is held past maxBlockChars', () => {
    const s = compileDlp({ name: 'small', maxBlockChars: 4096 }).stream();
    s.push('-----BEGIN OPENSSH PRIVATE KEY-----\n');
    expect(() => {
      for (let i = 0; i < 200; i++) s.push('b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n');
    }).toThrow(DlpStreamOverflow);
  });

  it('an open key is checked for its END line in the new text only, not re-scanned whole per chunk', () => {
    const s = compileDlp({ name: 'big', maxBlockChars: 65_536 }).stream();
    s.push('-----BEGIN PRIVATE KEY-----\n');
    const started = performance.now();
    // 15,000 tiny chunks full of hyphens: re-scanning all that is held each time is quadratic.
    for (let i = 0; i < 15_000; i++) s.push('- ');
    // Measured: ~40 ms; re-scanning everything held took ~1.5 s.
    expect(performance.now() - started).toBeLessThan(500);
    const end = s.push('\n-----END PRIVATE KEY----- ok');
    expect(end.findings.map((f) => [f.type, f.start])).toEqual([['PRIVATE_KEY', 0]]);
  });

  it('does not hold a certificate', () => {
    const s = scanner.stream();
    const step = s.push('-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n'.repeat(100));
    expect(s.held).toBeLessThan(100);
    expect(step.findings).toEqual([]);
  });

  it('holds a high surrogate whose pair has not arrived', () => {
    const s = scanner.stream();
    const step = s.push('ok 😀'.slice(0, -1));
    expect(step.decided).toBeLessThan('ok 😀'.length - 1);
  });
});
