// The keyword lead must never pass over a position where its shape matches: on generated texts
// (keywords in any case, separators near and far, bare words, prose), every position where the
// generic-secret shape matches, tried at each position, is one the seek loop tries, in texts
// sparse in separators (windows) and dense in them (a search throughout).
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/dlp/corpus.ts';
import { BUILTIN_DETECTORS } from './detectors.ts';

const generic = BUILTIN_DETECTORS.find((d) => d.type === 'GENERIC_SECRET')!;
const lead = generic.lead as { seeker(): { prepare(t: string): void; seek(t: string, f: number): number } };
const sticky = new RegExp(generic.regex.source, generic.regex.flags.replace('g', 'y'));

const PIECES = [
  'api_key',
  'ApiKey',
  'CLIENT_SECRET',
  'secret',
  'access-token',
  'auth_token',
  'refresh_token',
  'token',
  'Password',
  'passwd',
  'pwd',
  'private_key',
  'Bearer',
  'BEARER',
  'x9Kq2mZp7Lw4Rt8vN3bY',
  'aB3dE5gH7jK9mN1pQ3sT5vW7',
  ': ',
  '=',
  ':=',
  '=>',
  ' = "',
  "'",
  ' ',
  '  ',
  '\n',
  'tokenizer',
  'the quarterly report shows steady growth ',
  'with costs under control. ',
];

function text(r: () => number, separatorsPerPiece: number): string {
  const parts: string[] = [];
  const n = 20 + Math.floor(r() * 200);
  for (let i = 0; i < n; i++) {
    let p = PIECES[Math.floor(r() * PIECES.length)]!;
    if (separatorsPerPiece === 0) p = p.replace(/[:=]/g, ' ');
    parts.push(p);
  }
  return parts.join('');
}

function starts(t: string): number[] {
  const out: number[] = [];
  for (let at = 0; at < t.length; at++) {
    sticky.lastIndex = at;
    if (sticky.test(t)) out.push(at);
  }
  return out;
}

function viaSeek(t: string): number[] {
  const { prepare, seek } = lead.seeker();
  prepare(t);
  const out: number[] = [];
  for (let pos = seek(t, 0); pos >= 0; pos = seek(t, pos + 1)) {
    sticky.lastIndex = pos;
    if (sticky.test(t)) out.push(pos);
  }
  return out;
}

describe('keyword lead', () => {
  it('tries every position where the shape matches, texts sparse or dense in separators', () => {
    const r = rng(5);
    let matched = 0;
    for (let i = 0; i < 400; i++) {
      const t = i % 4 === 0 ? text(r, 0) : text(r, 1);
      // Long stretches of prose make the windowed path, many separators the dense one.
      const padded = i % 2 === 0 ? `${'plain words here and there '.repeat(200)}${t}` : t;
      const expected = starts(padded);
      matched += expected.length;
      expect(viaSeek(padded), padded.slice(-400)).toEqual(expected);
    }
    expect(matched).toBeGreaterThan(200);
  });

  it('finds a keyword whose separator is as far away as the shape allows', () => {
    const value = 'x9Kq2mZp7Lw4Rt8vN3bY';
    const far = `${'prose '.repeat(1000)}client_secret${'A'.repeat(24)}"   := ${value}`;
    expect(viaSeek(far)).toEqual(starts(far));
    expect(starts(far)[0]).toBe(6000);
  });

  it('finds the shortest keyword right before its separator', () => {
    const near = `${'prose '.repeat(1000)}pwd=x9Kq2mZp7Lw4Rt8vN3bY and token:aB3dE5gH7jK9mN1pQ3sT5vW7`;
    expect(viaSeek(near)).toEqual([6000, 6029]);
    expect(starts(near)).toEqual([6000, 6029]);
    const first = `pwd=x9Kq2mZp7Lw4Rt8vN3bY ${'prose '.repeat(1000)}`;
    expect(viaSeek(first)).toEqual([0]);
  });
});
