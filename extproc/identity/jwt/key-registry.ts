// The process-wide cache of issuers' signing keys. It outlives config snapshots (it is one of
// the StageDeps), so a reload keeps every key already fetched and an unchanged issuer is not
// fetched again; an issuer that left the config stops being refreshed.
import type { Clock } from '../../pipeline/stage.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import type { JwksConfig } from './config.ts';
import { type FetchJson, fetchJson } from './fetch-json.ts';
import { KeySource, type KeySourceDeps, type KeySourceSpec } from './key-source.ts';

export class KeyRegistry {
  private readonly sources = new Map<string, KeySource>();
  private readonly deps: KeySourceDeps;

  constructor(opts: {
    metrics: Pick<Metrics, 'jwksFetches' | 'jwksKeys'>;
    logger: Logger;
    clock: Clock;
    fetchJson?: FetchJson;
  }) {
    const { metrics } = opts;
    this.deps = {
      fetchJson: opts.fetchJson ?? fetchJson,
      clock: opts.clock,
      logger: opts.logger,
      onFetch: (issuer, reason, result) => metrics.jwksFetches.labels(issuer, reason, result).inc(),
      onKeys: (issuer, count) => metrics.jwksKeys.labels(issuer).set(count),
    };
  }

  /** The sources of a config's issuers, in order: new ones start fetching now, known ones keep
   * their keys and take the new settings; the others stop refreshing and are forgotten (a
   * snapshot still serving requests keeps its own reference, and its keys). */
  configure(specs: readonly KeySourceSpec[], settings: JwksConfig): KeySource[] {
    const wanted = new Set<KeySource>();
    const out = specs.map((spec) => {
      const id = `${spec.issuer}\n${spec.jwksUri ?? ''}\n${spec.allowHttpLoopback}`;
      let source = this.sources.get(id);
      if (source === undefined) {
        source = new KeySource(spec, settings, this.deps);
        this.sources.set(id, source);
      }
      source.settings = settings;
      wanted.add(source);
      return source;
    });
    for (const [id, s] of this.sources)
      if (!wanted.has(s)) {
        s.stop();
        this.sources.delete(id);
      }
    for (const s of out) s.start();
    return out;
  }

  /** Stops every background refresh (shutdown). */
  close(): void {
    for (const s of this.sources.values()) s.stop();
  }
}
