// Attribution labels (metering.labels): a project or environment name read from a request header
// or a principal attribute, recorded with the request's usage and cost. Values are bounded in
// length and charset, so a client cannot write arbitrary text (or unbounded cardinality of
// size) into the cost data; an invalid value is recorded as null.
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';

export const LABEL_VALUE = /^[A-Za-z0-9._:/@-]{1,64}$/;

type LabelConfig = Config['metering']['labels'];

export interface Labels {
  read(ctx: RequestContext): Record<string, string | null>;
}

const NONE: Labels = { read: () => ({}) };

export function compileLabels(config: LabelConfig): Labels {
  const entries = Object.entries(config);
  if (entries.length === 0) return NONE;
  return {
    read(ctx) {
      const out: Record<string, string | null> = {};
      for (const [name, src] of entries) {
        const v = 'header' in src ? ctx.headers.get(src.header) : ctx.principal?.attributes[src.claim];
        out[name] = v !== undefined && LABEL_VALUE.test(v) ? v : null;
      }
      return out;
    },
  };
}
