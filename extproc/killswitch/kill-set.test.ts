// The kill set's lookups, expiry (on a fake clock) and the form it crosses to gate workers in.
import { describe, expect, it } from 'vitest';
import { type KillEntry, KillSet, KillSetBuilder } from './kill-set.ts';

const clockAt = (ms: number) => ({ now: () => ms });
const entry = (over: Partial<KillEntry> = {}): KillEntry => ({ at: 1000, source: 'cli', ...over });

describe('KillSet', () => {
  it('finds an id only under its own kind', () => {
    const b = new KillSetBuilder();
    b.set('user', 'mallory', entry());
    const set = b.build();
    expect(set.find('user', 'mallory', clockAt(0))).toEqual(entry());
    expect(set.find('team', 'mallory', clockAt(0))).toBeUndefined();
    expect(set.find('user', 'Mallory', clockAt(0))).toBeUndefined();
    expect(set.empty).toBe(false);
    expect(KillSet.EMPTY.empty).toBe(true);
  });

  it('finds a killed model under every spelling its server resolves to it', () => {
    const b = new KillSetBuilder();
    b.set('model', 'llama3:70b', entry());
    b.set('model', 'Mistral', entry({ expiresAt: 5 }));
    const set = b.build();
    for (const name of ['llama3:70b', 'LLAMA3:70B', 'library/llama3:70b', 'registry.ollama.ai/library/llama3:70b+q8_0'])
      expect(set.find('model', name, clockAt(0)), name).toEqual(entry());
    expect(set.find('model', 'llama3:8b', clockAt(0))).toBeUndefined();
    expect(set.find('model', 'mistral:latest', clockAt(0))).toBeDefined();
    expect(set.find('model', 'mistral:latest', clockAt(9))).toBeUndefined();
  });

  it('an entry kills until its expiry, by the clock of the replica judging, and not from then on', () => {
    const b = new KillSetBuilder();
    b.set('key', 'k1', entry({ expiresAt: 5000 }));
    const set = b.build();
    expect(set.find('key', 'k1', clockAt(4999))).toBeDefined();
    expect(set.find('key', 'k1', clockAt(5000))).toBeUndefined();
    expect(set.find('key', 'k1', clockAt(9000))).toBeUndefined();
    // Still held (until pruned), so a listing can say it expired.
    expect(set.get('key', 'k1')).toBeDefined();
  });

  it('reads the clock only when an entry exists: a miss costs one Map lookup', () => {
    let reads = 0;
    const clock = {
      now: () => {
        reads++;
        return 0;
      },
    };
    const b = new KillSetBuilder();
    b.set('model', 'm', entry({ expiresAt: 10 }));
    const set = b.build();
    set.find('model', 'other', clock);
    expect(reads).toBe(0);
    set.find('model', 'm', clock);
    expect(reads).toBe(1);
  });

  it('a snapshot does not change when the builder it came from does', () => {
    const b = new KillSetBuilder();
    b.set('tenant', 't', entry());
    const first = b.build();
    b.delete('tenant', 't');
    expect(first.get('tenant', 't')).toBeDefined();
    expect(b.build().empty).toBe(true);
  });

  it('crosses to a worker and back whole (structured-clone data)', () => {
    const b = new KillSetBuilder();
    b.set('key', 'k', entry({ reason: 'leaked', by: 'ops@host' }));
    b.set('model', 'm', entry({ expiresAt: 99, source: 'config' }));
    const set = b.build();
    const back = KillSet.fromData(structuredClone(set.toData()));
    expect(back.sameAs(set)).toBe(true);
    expect([...back.entries()]).toEqual([...set.entries()]);
  });

  it('sameAs compares ids and every field of each entry', () => {
    const one = (e: KillEntry) => {
      const b = new KillSetBuilder();
      b.set('user', 'u', e);
      return b.build();
    };
    expect(one(entry()).sameAs(one(entry()))).toBe(true);
    expect(one(entry()).sameAs(one(entry({ reason: 'x' })))).toBe(false);
    expect(one(entry()).sameAs(one(entry({ expiresAt: 1 })))).toBe(false);
    expect(one(entry()).sameAs(KillSet.EMPTY)).toBe(false);
  });
});
