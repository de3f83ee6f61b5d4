import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BatchedCounter, BatchedGauge } from './batched.ts';

describe('batched metrics', () => {
  it('a counter hands its totals over when read, per label set, and counts on from there', async () => {
    const registry = new Registry();
    const c = new BatchedCounter({ name: 't_total', help: 'h', labelNames: ['a', 'b'], registers: [registry] });
    c.inc(['x', 'y']);
    c.inc(['x', 'y'], 2);
    c.inc(['x', 'z'], 0.5);
    // Values that a plain join would run together stay apart.
    c.inc(['x,y', '']);
    c.inc(['a\u0001', 'b']);
    c.inc(['a', '\u0001b']);
    // Counted with 0: the series appears, as prom-client shows it.
    c.inc(['zero', 'z'], 0);
    expect(await registry.getSingleMetricAsString('t_total')).toContain('t_total{a="x",b="y"} 3');
    const values = (await c.metric.get()).values;
    expect(values).toEqual(
      expect.arrayContaining([
        { labels: { a: 'x', b: 'y' }, value: 3 },
        { labels: { a: 'x', b: 'z' }, value: 0.5 },
        { labels: { a: 'x,y', b: '' }, value: 1 },
        { labels: { a: 'a\u0001', b: 'b' }, value: 1 },
        { labels: { a: 'a', b: '\u0001b' }, value: 1 },
        { labels: { a: 'zero', b: 'z' }, value: 0 },
      ]),
    );
    c.inc(['x', 'y']);
    expect((await c.metric.get()).values).toContainEqual({ labels: { a: 'x', b: 'y' }, value: 4 });
    // Read twice without increments: nothing is added twice.
    expect((await c.metric.get()).values).toContainEqual({ labels: { a: 'x', b: 'y' }, value: 4 });
  });

  it('refuses the wrong number of label values and negative increments', () => {
    const c = new BatchedCounter({ name: 'u_total', help: 'h', labelNames: ['a', 'b'], registers: [] });
    expect(() => c.inc(['x'])).toThrow(/label values/);
    expect(() => c.inc(['x', 'y'], -1)).toThrow(/cannot add/);
  });

  it('a gauge keeps the last value set before a read', async () => {
    const registry = new Registry();
    const g = new BatchedGauge({ name: 'g', help: 'h', labelNames: ['k'], registers: [registry] });
    g.set(['a'], 0.2);
    g.set(['a'], 0.7);
    g.set(['b'], 1);
    expect((await g.metric.get()).values).toEqual(
      expect.arrayContaining([
        { labels: { k: 'a' }, value: 0.7 },
        { labels: { k: 'b' }, value: 1 },
      ]),
    );
    g.set(['a'], 0.1);
    expect((await g.metric.get()).values).toContainEqual({ labels: { k: 'a' }, value: 0.1 });
  });
});
