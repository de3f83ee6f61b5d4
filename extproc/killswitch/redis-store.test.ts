// What a replica makes of entries and messages read from Redis: anything that is not ours is
// ignored on the channel, but a value in a kill hash always kills (fail closed).
import { describe, expect, it } from 'vitest';
import { parseEntry, parseMessage } from './redis-store.ts';

describe('parseEntry', () => {
  it('reads an entry as the gate writes it, dropping unknown fields', () => {
    expect(
      parseEntry(JSON.stringify({ at: 5, source: 'cli', reason: 'r', expiresAt: 9, by: 'ops@h', extra: 1 })),
    ).toEqual({ at: 5, source: 'cli', reason: 'r', expiresAt: 9, by: 'ops@h' });
  });

  it.each([
    ['not JSON', 'yes'],
    ['a number', '1'],
    ['no source', JSON.stringify({ at: 5 })],
    ['an expiry that is not a number', JSON.stringify({ at: 5, source: 'cli', expiresAt: 'soon' })],
  ])('an unreadable value (%s) still kills, until lifted', (_name, raw) => {
    const e = parseEntry(raw);
    expect(e.expiresAt).toBeUndefined();
    expect(e.reason).toMatch(/unreadable/);
  });

  it('bounds the text it keeps', () => {
    const e = parseEntry(JSON.stringify({ at: 5, source: 'cli', reason: 'x'.repeat(10_000) }));
    expect(e.reason).toHaveLength(500);
  });
});

describe('parseMessage', () => {
  it('reads kills and lifts', () => {
    expect(parseMessage('{"v":3,"op":"kill","kind":"user","id":"u","entry":{"at":1,"source":"cli"}}')).toEqual({
      v: 3,
      op: 'kill',
      kind: 'user',
      id: 'u',
      entry: { at: 1, source: 'cli' },
    });
    expect(parseMessage('{"v":4,"e":"ab12","op":"lift","kind":"model","id":"m"}')).toEqual({
      v: 4,
      e: 'ab12',
      op: 'lift',
      kind: 'model',
      id: 'm',
    });
  });

  it('a kill whose entry is unreadable still kills', () => {
    expect(parseMessage('{"v":3,"op":"kill","kind":"key","id":"k","entry":"?"}')?.entry?.reason).toMatch(/unreadable/);
  });

  it.each([
    'not json',
    '{"v":"3","op":"kill","kind":"user","id":"u"}',
    '{"v":3,"op":"kill","kind":"group","id":"u"}',
    '{"v":3,"op":"ban","kind":"user","id":"u"}',
    '{"v":3,"op":"lift","kind":"user"}',
    '[]',
  ])('ignores what is not one of ours: %s', (raw) => expect(parseMessage(raw)).toBeUndefined());
});
