import { describe, expect, it } from 'vitest';
import type { AuditRecord } from './record.ts';
import { refusalSummaryLine } from './record-schema.ts';
import { isSinkRefusal, MAX_CHARS, RefusalTally, type SinkRefusal } from './refusal-tally.ts';

const T0 = Date.parse('2026-11-24T00:00:00Z');
const r = (i: number, over: Partial<SinkRefusal> = {}): SinkRefusal => ({
  line: '',
  time: new Date(T0 + i).toISOString(),
  requestId: `id${i}`,
  tenant: null,
  route: null,
  api: 'openai.chat',
  status: 503,
  code: 'audit_unavailable',
  ...over,
});
/** The summary line as the sink writes it, with the chain fields. */
const line = (t: RefusalTally) =>
  JSON.parse(`{"type":"refusal_summary","seq":1,"prev":"${'0'.repeat(64)}",${t.json(T0 + 10_000).slice(1)}`);

describe('RefusalTally', () => {
  it('counts per tenant, route, API, status and code, with the first and last by request time', () => {
    const t = new RefusalTally();
    t.add(r(2));
    t.add(r(1)); // arrived late (a worker's batch): still the first
    t.add(r(3, { api: 'openai.embeddings' }));
    t.add(r(4));
    const o = line(t);
    expect(refusalSummaryLine.safeParse(o).success).toBe(true);
    expect(o).toMatchObject({
      refused: 4,
      first_time: new Date(T0 + 1).toISOString(),
      last_time: new Date(T0 + 4).toISOString(),
      other: null,
    });
    expect(o.groups).toEqual([
      {
        tenant: null,
        route: null,
        api: 'openai.chat',
        status: 503,
        code: 'audit_unavailable',
        count: 3,
        first_time: new Date(T0 + 1).toISOString(),
        last_time: new Date(T0 + 4).toISOString(),
        first_request_id: 'id1',
        last_request_id: 'id4',
      },
      expect.objectContaining({ api: 'openai.embeddings', count: 1, first_request_id: 'id3', last_request_id: 'id3' }),
    ]);
  });

  it('is bounded: keys past the cap fold into other, and long strings are cut', () => {
    const t = new RefusalTally(4);
    const long = 'x'.repeat(10_000);
    for (let i = 0; i < 1000; i++) t.add(r(i, { tenant: `${long}${i}`, requestId: `${long}${i}` }));
    const o = line(t);
    expect(refusalSummaryLine.safeParse(o).success).toBe(true);
    expect(o.refused).toBe(1000);
    expect(o.groups).toHaveLength(4);
    expect(o.other).toMatchObject({ count: 996, first_request_id: 'x'.repeat(MAX_CHARS) });
    expect(o.groups[0].tenant).toHaveLength(MAX_CHARS);
    // The serialised summary stays small whatever came in.
    expect(t.json(T0).length).toBeLessThan(6 * (5 * MAX_CHARS + 400));
  });

  it('only a 503 audit_unavailable with no capture line is a sink refusal', () => {
    const rec = (code: string | null) =>
      ({ error: code === null ? null : { code, type: 'x', status: 503, rule_id: null } }) as unknown as AuditRecord;
    expect(isSinkRefusal(rec('audit_unavailable'), undefined)).toBe(true);
    expect(isSinkRefusal(rec('audit_unavailable'), '{"type":"capture"}')).toBe(false);
    expect(isSinkRefusal(rec('draining'), undefined)).toBe(false);
    expect(isSinkRefusal(rec(null), undefined)).toBe(false);
  });
});
