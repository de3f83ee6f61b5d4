// What tokens cost: the price table (metering.prices, metering.routePrices) compiled once per
// config snapshot, and the cost of a request's tokens under a price. Shared by metering (cost in
// the audit record and metrics) and limits (budget reservations), so both price alike.
import type { Config } from '../config/schema.ts';
import { compileModelPatterns, modelKey } from '../policy/model-names.ts';
import type { Matcher } from '../policy/patterns.ts';

/** Prices per million tokens, in `currency`. */
export interface Price {
  input: number;
  cachedInput: number;
  output: number;
  currency: string;
}

export interface PriceBook {
  /** The price of `model` (the model sent upstream) on `route`; undefined: not priced. */
  priceFor(model: string, route: string | undefined): Price | undefined;
  /** Whether any price is configured: without one, cost is not computed. */
  readonly active: boolean;
}

type PriceConfig = Config['metering']['prices'][string];

/** One table: exact names in a Map (by key: every spelling of a model has its price), patterns
 * in the order written. */
class Table {
  private readonly exact = new Map<string, Price>();
  private readonly wild: (readonly [Matcher, Price])[] = [];
  constructor(entries: Record<string, PriceConfig>, currency: string) {
    for (const [pattern, p] of Object.entries(entries)) {
      const price: Price = {
        input: p.input,
        cachedInput: p.cachedInput ?? p.input,
        output: p.output,
        currency: p.currency ?? currency,
      };
      if (pattern.includes('*')) this.wild.push([compileModelPatterns([pattern]), price]);
      else this.exact.set(modelKey(pattern), price);
    }
  }
  get size(): number {
    return this.exact.size + this.wild.length;
  }
  find(model: string): Price | undefined {
    const hit = this.exact.get(modelKey(model));
    if (hit !== undefined) return hit;
    for (const [matches, price] of this.wild) if (matches(model)) return price;
    return undefined;
  }
}

class Book implements PriceBook {
  private readonly base: Table;
  private readonly byRoute: ReadonlyMap<string, Table>;
  readonly active: boolean;
  constructor(config: Config) {
    const m = config.metering;
    this.base = new Table(m.prices, m.currency);
    this.byRoute = new Map(Object.entries(m.routePrices).map(([r, t]) => [r, new Table(t, m.currency)]));
    this.active = this.base.size > 0 || [...this.byRoute.values()].some((t) => t.size > 0);
  }
  priceFor(model: string, route: string | undefined): Price | undefined {
    if (route !== undefined) {
      const p = this.byRoute.get(route)?.find(model);
      if (p !== undefined) return p;
    }
    return this.base.find(model);
  }
}

const books = new WeakMap<Config, PriceBook>();

/** The price book of a config snapshot, compiled on first use and kept with the snapshot. */
export function priceBookFor(config: Config): PriceBook {
  let book = books.get(config);
  if (book === undefined) {
    book = new Book(config);
    books.set(config, book);
  }
  return book;
}

/** The zero price an unpriced model gets under unknownModel: price_zero_warn. */
export function zeroPrice(currency: string): Price {
  return { input: 0, cachedInput: 0, output: 0, currency };
}

/** Cost in currency units. `input` counts every prompt token, cached ones included (as OpenAI's
 * prompt_tokens does); `cachedInput` says how many of them are charged at the cached price. */
export function costOf(price: Price, tokens: { input: number; cachedInput?: number; output: number }): number {
  const cached = Math.min(tokens.cachedInput ?? 0, tokens.input);
  return ((tokens.input - cached) * price.input + cached * price.cachedInput + tokens.output * price.output) / 1e6;
}
