import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.ts';
import { costOf, priceBookFor } from './prices.ts';

const book = (metering: Record<string, unknown>) => priceBookFor(configSchema.parse({ metering }));

describe('price book', () => {
  const b = book({
    currency: 'EUR',
    prices: {
      'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10, currency: 'USD' },
      'llama-*': { input: 0.2, output: 0.4 },
      '*-mini': { input: 0.1, output: 0.1 },
      'llama-3.1-8b': { input: 0.05, output: 0.05 },
    },
    routePrices: { onprem: { 'llama-*': { input: 0.01, output: 0.02 } } },
  });

  it('finds exact names before patterns, patterns in the order written', () => {
    expect(b.priceFor('llama-3.1-8b', undefined)).toEqual({
      input: 0.05,
      cachedInput: 0.05,
      output: 0.05,
      currency: 'EUR',
    });
    expect(b.priceFor('llama-mini', undefined)?.input).toBe(0.2);
    expect(b.priceFor('gpt-4o', undefined)).toEqual({ input: 2.5, cachedInput: 1.25, output: 10, currency: 'USD' });
  });

  it("prefers the route's prices, and falls back to the base table", () => {
    expect(b.priceFor('llama-3.1-8b', 'onprem')?.input).toBe(0.01);
    expect(b.priceFor('gpt-4o', 'onprem')?.input).toBe(2.5);
    expect(b.priceFor('llama-3.1-8b', 'other-route')?.input).toBe(0.05);
  });

  it('prices every spelling of a model its server resolves to it (an unpriced spelling would spend no budget)', () => {
    expect(b.priceFor('LLAMA-3.1-8B', undefined)?.input).toBe(0.05);
    expect(b.priceFor('library/llama-3.1-8b:latest', undefined)?.input).toBe(0.05);
    expect(b.priceFor('registry.ollama.ai/library/LLAMA-3.1-70b', undefined)?.input).toBe(0.2);
  });

  it('says undefined for a model no price covers', () => {
    expect(b.priceFor('mistral-large', undefined)).toBeUndefined();
    expect(b.active).toBe(true);
  });

  it('is built once per config snapshot', () => {
    const config = configSchema.parse({ metering: { prices: { m: { input: 1 } } } });
    expect(priceBookFor(config)).toBe(priceBookFor(config));
    expect(priceBookFor(configSchema.parse({})).active).toBe(false);
  });
});

describe('costOf', () => {
  const price = { input: 2.5, cachedInput: 1.25, output: 10, currency: 'USD' };
  it('charges per million tokens, cached input at its own price', () => {
    expect(costOf(price, { input: 1_000_000, output: 0 })).toBe(2.5);
    expect(costOf(price, { input: 1000, cachedInput: 400, output: 200 })).toBeCloseTo(
      (600 * 2.5 + 400 * 1.25 + 200 * 10) / 1e6,
      15,
    );
  });
  it('never charges more cached tokens than input tokens', () => {
    expect(costOf(price, { input: 10, cachedInput: 50, output: 0 })).toBeCloseTo((10 * 1.25) / 1e6, 15);
  });
});

describe('metering price config', () => {
  it('refuses negative prices and bad currencies', () => {
    expect(() => configSchema.parse({ metering: { prices: { m: { input: -1 } } } })).toThrow();
    expect(() => configSchema.parse({ metering: { prices: { m: { input: 1, currency: 'usd' } } } })).toThrow();
  });
});
