import { describe, expect, it } from 'vitest';
import { dlpConfig } from './config.ts';

const problems = (input: unknown) => {
  const r = dlpConfig.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('dlp config', () => {
  it('defaults to one policy named default with every detector on', () => {
    const c = dlpConfig.parse(undefined);
    expect(c.defaultPolicy).toBe('default');
    expect(c.policies.map((p) => [p.name, p.detectors])).toEqual([['default', {}]]);
  });

  it('refuses a pattern RE2 cannot compile (backreferences, lookaround)', () => {
    expect(
      problems({
        policies: [
          {
            name: 'default',
            patterns: [
              { name: 'X', regex: '(a)\\1' },
              { name: 'Y', regex: '(?=a)' },
            ],
          },
        ],
      }),
    ).toEqual([
      expect.stringMatching(/^policies\.0\.patterns\.0\.regex: not an RE2 expression/),
      expect.stringMatching(/^policies\.0\.patterns\.1\.regex: not an RE2 expression/),
    ]);
  });

  it('refuses a default policy that does not exist, a policy twice, a custom name twice or a built-in name', () => {
    expect(problems({ defaultPolicy: 'strict', policies: [{ name: 'default' }] })).toEqual([
      'defaultPolicy: no policy is named "strict"',
    ]);
    expect(problems({ policies: [{ name: 'default' }, { name: 'default' }] })).toEqual([
      'policies.1.name: policy "default" is defined twice',
    ]);
    expect(
      problems({
        policies: [
          { name: 'default', patterns: [{ name: 'X', regex: 'x' }], wordLists: [{ name: 'X', words: ['y'] }] },
        ],
      }),
    ).toEqual(['policies.0.wordLists.0.name: "X" is used twice in this policy']);
    expect(problems({ policies: [{ name: 'default', patterns: [{ name: 'EMAIL', regex: 'x' }] }] })).toEqual([
      'policies.0.patterns.0.name: that is a built-in detector name',
    ]);
  });

  it('refuses an unknown detector or action', () => {
    expect(problems({ policies: [{ name: 'default', detectors: { PASSPORT: 'block' } }] }).length).toBe(1);
    expect(problems({ policies: [{ name: 'default', detectors: { EMAIL: 'shred' } }] }).length).toBe(1);
  });
});
