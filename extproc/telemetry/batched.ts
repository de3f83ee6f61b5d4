// Per-request counters and gauges that wait in a Map until the metric is read. prom-client's
// inc() and set() validate the labels, build a labels object and hash it (sorting the label
// names) on every call, children included: with a dozen of them per request that was ~5% of the
// governed gate's busy time and ~5 KiB of garbage a request (npm run bench:alloc). Here a call
// is one Map lookup by the joined label values; the metric's collect hook, which prom-client
// runs before every read (a scrape, a gate worker's snapshot, get() in tests), hands the totals
// over. Label cardinality is whatever the caller bounds it to, as with prom-client itself.
import { Counter, type CounterConfiguration, Gauge, type GaugeConfiguration } from 'prom-client';

const SEP = '\u0001';

interface Pending {
  labels: Record<string, string>;
  value: number;
  /** Handed over at least once: a series counted with 0 still appears, as in prom-client. */
  shown: boolean;
}

/** The Map key of a label set: the value itself for one label, else each value prefixed with its
 * length, so no two label sets share a key whatever characters they hold. */
function keyOf(values: readonly string[]): string {
  if (values.length === 1) return values[0]!;
  let key = '';
  for (const v of values) key += `${v.length}${SEP}${v}`;
  return key;
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) labels[names[i]!] = values[i]!;
  return labels;
}

function checkArity(name: string, names: readonly string[], values: readonly string[]): void {
  if (values.length !== names.length)
    throw new Error(`${name}: ${values.length} label values for labels ${names.join(', ')}`);
}

export class BatchedCounter<L extends string> {
  readonly metric: Counter<L>;
  private readonly name: string;
  private readonly names: readonly string[];
  private readonly pending = new Map<string, Pending>();

  constructor(config: Omit<CounterConfiguration<L>, 'collect'> & { labelNames: readonly L[] }) {
    this.name = config.name;
    this.names = config.labelNames;
    this.metric = new Counter<L>({ ...config, collect: () => this.flush() });
  }

  /** Adds `by` (default 1) under the label values, in labelNames order. */
  inc(values: readonly string[], by = 1): void {
    const key = keyOf(values);
    const p = this.pending.get(key);
    if (p !== undefined) {
      p.value += by;
      return;
    }
    checkArity(this.name, this.names, values);
    if (!Number.isFinite(by) || by < 0) throw new Error(`${this.name}: cannot add ${by}`);
    this.pending.set(key, { labels: labelsOf(this.names, values), value: by, shown: false });
  }

  private flush(): void {
    for (const p of this.pending.values()) {
      if (p.value === 0 && p.shown) continue;
      this.metric.inc(p.labels as never, p.value);
      p.value = 0;
      p.shown = true;
    }
  }
}

export class BatchedGauge<L extends string> {
  readonly metric: Gauge<L>;
  private readonly name: string;
  private readonly names: readonly string[];
  private readonly pending = new Map<string, Pending & { dirty: boolean }>();

  constructor(config: Omit<GaugeConfiguration<L>, 'collect'> & { labelNames: readonly L[] }) {
    this.name = config.name;
    this.names = config.labelNames;
    this.metric = new Gauge<L>({ ...config, collect: () => this.flush() });
  }

  /** Sets the value under the label values, in labelNames order; the last set before a read wins. */
  set(values: readonly string[], value: number): void {
    const key = keyOf(values);
    const p = this.pending.get(key);
    if (p !== undefined) {
      p.value = value;
      p.dirty = true;
      return;
    }
    checkArity(this.name, this.names, values);
    this.pending.set(key, { labels: labelsOf(this.names, values), value, dirty: true, shown: false });
  }

  private flush(): void {
    for (const p of this.pending.values()) {
      if (!p.dirty) continue;
      this.metric.set(p.labels as never, p.value);
      p.dirty = false;
    }
  }
}
