// What metering established about a request beyond ctx.usage, for the audit record and metrics:
// its cost and its attribution labels. Set by metering.usage; absent when that stage did not run.
import type { RequestContext } from '../pipeline/context.ts';
import { defineSlot } from '../pipeline/slots.ts';

export interface Cost {
  amount: number;
  currency: string;
}

export interface MeteringFacts {
  /** null: not priced (no price table, or no usage to price). */
  cost: Cost | null;
  /** Attribution labels by name (metering.labels); null when absent or not a valid value. */
  labels: Record<string, string | null>;
}

export const meteringFacts = defineSlot<MeteringFacts>('metering.facts');

export function meteringFactsOf(ctx: RequestContext): MeteringFacts | undefined {
  return ctx.get(meteringFacts);
}
