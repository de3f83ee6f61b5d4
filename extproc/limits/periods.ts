// A rate limit's periods in milliseconds: the config's `per` names them, the rate stage counts
// in them. Apart from the zod schema (limits/config.ts), so the serving gate never loads zod.
export const PERIODS = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type Period = keyof typeof PERIODS;
