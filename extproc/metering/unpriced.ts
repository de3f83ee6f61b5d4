// Unpriced models (metering.unknownModel: price_zero_warn): one warning per model per process,
// and a counter per request. Model names come from clients, so the set of names warned about is
// bounded; past the bound one last warning says further ones are not logged.
import type { StageDeps } from '../pipeline/stage.ts';

export const MAX_WARNED_MODELS = 256;

export class UnpricedWarnings {
  private readonly warned = new Set<string>();
  private full = false;

  note(model: string, deps: Pick<StageDeps, 'logger' | 'metrics'>): void {
    deps.metrics.countUnpriced(model);
    if (this.warned.has(model) || this.full) return;
    if (this.warned.size >= MAX_WARNED_MODELS) {
      this.full = true;
      deps.logger.warn({ models: this.warned.size }, 'more unpriced models; further ones are not logged');
      return;
    }
    this.warned.add(model);
    deps.logger.warn({ model }, 'no price covers this model; its requests cost 0 (metering.prices)');
  }
}
