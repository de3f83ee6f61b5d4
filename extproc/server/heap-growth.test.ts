import { describe, expect, it } from 'vitest';
import { boundHeapGrowth } from './heap-growth.ts';

describe('boundHeapGrowth', () => {
  it("sets the gate's factor when node's command line sets none", () => {
    expect(boundHeapGrowth([])).toBe(true);
    expect(boundHeapGrowth(['--max-semi-space-size=8', '--import', 'x.js'])).toBe(true);
  });

  it("leaves a --heap-growing-percent on node's command line alone, however it is spelled", () => {
    expect(boundHeapGrowth(['--heap-growing-percent=0'])).toBe(false);
    expect(boundHeapGrowth(['--heap_growing_percent=50'])).toBe(false);
    expect(boundHeapGrowth(['--heap-growing-percent', '30'])).toBe(false);
  });
});
