// docs/failure-modes.md says, stage by stage, what a stage does when it cannot decide: a stage
// added without a row there would leave operators guessing whether it fails open. Every stage in
// the catalog must have a row, and every error code the page names must be in the catalog.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG } from './errors.ts';
import { STAGES } from './stages.ts';

const page = readFileSync(new URL('../../docs/failure-modes.md', import.meta.url), 'utf8');

/** The stage names in the first cell of each row of the "Stage by stage" table. */
function documentedStages(md: string): Set<string> {
  const section = md.split(/^## /m).find((s) => s.startsWith('Stage by stage')) ?? '';
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1] ?? '';
    for (const [, n] of first.matchAll(/`([a-z_]+\.[a-z_]+)`/g)) names.add(n as string);
  }
  return names;
}

describe('docs/failure-modes.md', () => {
  it('has a row for every stage', () => {
    const documented = documentedStages(page);
    expect(STAGES.map((s) => s.name).filter((n) => !documented.has(n))).toEqual([]);
  });

  it('names only error codes of the catalog', () => {
    const named = [...page.matchAll(/\d{3} `([a-z_]+)`/g)].map((m) => m[1] as string);
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((c) => !(c in ERROR_CATALOG))).toEqual([]);
  });

  it('a stage missing from the table is found (the check can fail)', () => {
    const without = page.replace(/^\| `guard\.injection` \|.*\n/m, '');
    expect(without).not.toBe(page);
    expect(documentedStages(without).has('guard.injection')).toBe(false);
    expect(documentedStages(page).has('guard.injection')).toBe(true);
  });
});
