// lm-gate kill's command line: what it accepts and the one-line usage errors (exit 2) it gives.
import { describe, expect, it } from 'vitest';
import { parseKillArgs } from './kill.ts';
import { UsageError } from './usage.ts';

describe('parseKillArgs', () => {
  it('kill, lift and list', () => {
    expect(parseKillArgs(['user', 'mallory', '--reason', 'phished', '--ttl', '1h', '-c', 'g.yaml'])).toEqual({
      action: 'kill',
      kind: 'user',
      id: 'mallory',
      reason: 'phished',
      ttlMs: 3_600_000,
      config: 'g.yaml',
    });
    expect(parseKillArgs(['--lift', 'model', 'llama-3.1-70b', '-c', 'g.yaml'])).toEqual({
      action: 'lift',
      kind: 'model',
      id: 'llama-3.1-70b',
      config: 'g.yaml',
    });
    expect(parseKillArgs(['--list', '--config', 'g.yaml'])).toEqual({ action: 'list', config: 'g.yaml' });
    expect(parseKillArgs(['--help'])).toBe('help');
  });

  it.each([
    [['user', 'u'], /-c FILE is required/],
    [['user', '-c', 'g'], /expected KIND and ID/],
    [['group', 'g1', '-c', 'g'], /unknown KIND "group"; one of key, user, team, tenant, model/],
    [['user', 'a\nb', '-c', 'g'], /ID must be 1-256 characters/],
    [['user', 'x'.repeat(257), '-c', 'g'], /ID must be 1-256 characters/],
    [['user', 'u', '--ttl', 'soon', '-c', 'g'], /--ttl "soon": expected a number and a unit/],
    [['user', 'u', '--reason', 'r'.repeat(201), '-c', 'g'], /--reason is at most 200 characters/],
    [['--lift', 'user', 'u', '--ttl', '1h', '-c', 'g'], /--lift takes no --reason or --ttl/],
    [['--list', 'user', '-c', 'g'], /--list takes no KIND/],
    [['--list', '--lift', '-c', 'g'], /--lift and --list do not go together/],
    [['user', 'u', '--bogus', '-c', 'g'], /unknown option '--bogus'/],
  ])('%j is a usage error', (args, message) => {
    expect(() => parseKillArgs(args)).toThrow(UsageError);
    expect(() => parseKillArgs(args)).toThrow(message);
  });
});
