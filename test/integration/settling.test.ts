// Settling, over a real gRPC stream: when a request ends while a stage is still working on it
// (the message deadline answered 503, or Envoy cancelled the stream), the gate aborts ctx.signal,
// waits for the late hook, then runs every stage's onEnd, and only then writes the audit record.
// The stage here behaves like a budget: it reserves asynchronously (a Redis call already sent,
// which ignores the signal) and refunds in onEnd what a request that was not served reserved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AbortReason } from '../../extproc/pipeline/context.ts';
import { defineSlot } from '../../extproc/pipeline/slots.ts';
import { defineStage } from '../../extproc/pipeline/stage.ts';
import { chatBody, chatHeadersFor, requestBody, requestHeaders } from '../harness/ext-proc-client.ts';
import { makeKey } from '../harness/gate.ts';
import { type InProcessGate, startInProcessGate } from '../harness/in-process-gate.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const ledger = { reserved: 0, refunded: 0, abortSeen: [] as (AbortReason | undefined)[] };
const reservation = defineSlot<number>('test.budget.reservation');

const budget = defineStage({
  name: 'test.budget',
  summary: 'reserves 10 tokens per request, slowly; refunds in onEnd what was not served',
  needs: [],
  provides: [],
  always: true,
  create: () => ({
    async onRequestBody(ctx) {
      // Slower than the message deadline (100 ms), and deaf to the signal on purpose.
      await sleep(
        ctx.headers.get('x-test-reserve-ms') === undefined ? 0 : Number(ctx.headers.get('x-test-reserve-ms')),
      );
      ledger.reserved += 10;
      ctx.set(reservation, 10);
      ledger.abortSeen.push(ctx.aborted);
    },
    async onEnd(ctx) {
      const held = ctx.get(reservation);
      if (held === undefined || ctx.outcome === 'completed') return;
      await sleep(20); // the refund is a round trip too
      ledger.refunded += held;
      ctx.decide({ stage: 'test.budget', ruleId: 'test.refund', effect: 'modify', reason: `refunded ${held}` });
    },
  }),
});

/** Never settles: the record must still be written, after the bound. */
const stuck = defineStage({
  name: 'test.stuck',
  summary: 'an onEnd that never returns',
  needs: [],
  provides: [],
  always: true,
  create: () => ({ onEnd: (ctx) => (ctx.headers.has('x-test-stuck') ? new Promise<void>(() => {}) : undefined) }),
});

let gate: InProcessGate;
beforeAll(async () => {
  gate = await startInProcessGate([alice], {
    extra: { server: { messageDeadlineMs: 100, settleTimeoutMs: 400 } },
    extraStages: [budget, stuck],
  });
});
afterAll(() => gate.stop());

describe('a late stage is settled before the audit record', () => {
  it('a reservation made after the deadline answered 503 is refunded in onEnd before the record is written', async () => {
    const before = (await gate.auditRecords()).length;
    const s = gate.client.open();
    await s.exchange(requestHeaders(chatHeadersFor(alice.key, { 'x-test-reserve-ms': '250' })));
    const t0 = Date.now();
    const a = await s.exchange(requestBody(chatBody()));
    expect(Date.now() - t0).toBeLessThan(240);
    expect(a.immediateResponse?.status.code).toBe(503);
    // The record waits for the late reservation and its refund (~270 ms), not for the bound.
    const records = await gate.waitAudit(before + 1);
    const rec = records.at(-1)!;
    expect(rec).toMatchObject({ status: 503, outcome: 'error', error: { code: 'gateway_timeout' } });
    // The refund is in the record: onEnd ran, and finished, before it was written.
    expect(rec.decisions).toContainEqual({
      stage: 'test.budget',
      rule_id: 'test.refund',
      effect: 'modify',
      reason: 'refunded 10',
    });
    expect(ledger.refunded).toBe(ledger.reserved);
    // The late hook could see why the gate stopped waiting.
    expect(ledger.abortSeen.at(-1)).toBe('deadline');
    s.end();
  });

  it('a reservation pending when Envoy cancels the stream is refunded too', async () => {
    const before = (await gate.auditRecords()).length;
    const reserved = ledger.reserved;
    const s = gate.client.open();
    await s.exchange(requestHeaders(chatHeadersFor(alice.key, { 'x-test-reserve-ms': '80' })));
    s.send(requestBody(chatBody()));
    await sleep(20);
    s.cancel();
    const rec = (await gate.waitAudit(before + 1)).at(-1)!;
    expect(rec.outcome).toBe('cancelled');
    expect(rec.decisions.map((d: { rule_id: string }) => d.rule_id)).toContain('test.refund');
    expect(ledger.reserved).toBe(reserved + 10);
    expect(ledger.refunded).toBe(ledger.reserved);
    expect(ledger.abortSeen.at(-1)).toBe('cancelled');
  });

  it('an onEnd that never settles delays the record by server.settleTimeoutMs, and no longer', async () => {
    const before = (await gate.auditRecords()).length;
    const s = gate.client.open();
    await s.exchange(requestHeaders(chatHeadersFor(alice.key, { 'x-test-stuck': '1' }), true));
    s.cancel();
    const t0 = Date.now();
    const rec = (await gate.waitAudit(before + 1)).at(-1)!;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(rec.failure).toMatch(/onEnd did not settle within 400 ms/);
  });
});
