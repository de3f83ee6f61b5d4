import { describe, expect, it } from 'vitest';
import { peerRatio } from './peers-result.ts';

describe('peerRatio (LM Gate / AI Gateway)', () => {
  it('divides and keeps two decimals', () => {
    expect(peerRatio(1.5, 1)).toBe(1.5);
    expect(peerRatio(1, 3)).toBe(0.33);
    expect(peerRatio(2193, 2613)).toBe(0.84);
  });

  it('has no ratio where either side is not above zero (noise around Envoy alone)', () => {
    expect(peerRatio(0, 1)).toBeNull();
    expect(peerRatio(1, 0)).toBeNull();
    expect(peerRatio(-0.2, 0.5)).toBeNull();
    expect(peerRatio(0.5, -0.2)).toBeNull();
    expect(peerRatio(null, 1)).toBeNull();
    expect(peerRatio(Number.NaN, 1)).toBeNull();
  });

  it('has no ratio that rounds to zero', () => {
    expect(peerRatio(0.001, 10)).toBeNull();
  });
});
