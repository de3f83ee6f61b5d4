import { describe, expect, it } from 'vitest';
import { type GateHost, gateReadiness } from './host.ts';

/** A host of two listening workers whose readiness round trip takes a turn, during which
 * `during` runs (the audit sink recovering or failing while the workers answer). */
function host(during: () => void, draining = false): GateHost {
  return {
    isDraining: draining,
    readiness: async () => {
      await Promise.resolve();
      during();
      return { listening: 2, problems: [] };
    },
  } as unknown as GateHost;
}

describe('gateReadiness', () => {
  it('is ready when the sink accepts before and after the workers are asked', async () => {
    const audit = { accepting: true };
    expect(
      await gateReadiness(
        host(() => {}),
        audit,
        2,
      ),
    ).toEqual({ ready: true, warnings: [] });
  });

  it('is not ready when the sink recovered only while the workers were asked: they were told it refuses', async () => {
    const audit = { accepting: false };
    const r = await gateReadiness(
      host(() => (audit.accepting = true)),
      audit,
      2,
    );
    expect(r).toMatchObject({ ready: false, reason: 'audit sink not accepting' });
    // the next check, with the workers told, is ready
    expect(
      (
        await gateReadiness(
          host(() => {}),
          audit,
          2,
        )
      ).ready,
    ).toBe(true);
  });

  it('is not ready when the sink stopped accepting meanwhile, draining, or short of workers', async () => {
    const audit = { accepting: true };
    expect(
      (
        await gateReadiness(
          host(() => (audit.accepting = false)),
          audit,
          2,
        )
      ).ready,
    ).toBe(false);
    expect(
      await gateReadiness(
        host(() => {}, true),
        { accepting: true },
        2,
      ),
    ).toMatchObject({ reason: 'draining' });
    expect(
      await gateReadiness(
        host(() => {}),
        { accepting: true },
        3,
      ),
    ).toMatchObject({
      reason: '2 of 3 gate workers listening',
    });
  });
});
