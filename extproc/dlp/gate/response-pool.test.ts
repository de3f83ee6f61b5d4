// Large buffered JSON responses are scanned on the parse pool's workers, like large request
// bodies: through the real state machine (runStage), the client gets the same redacted and
// restored body as an inline scan gives, the gate asks Envoy to wait longer for that answer, and
// a worker failure fails closed (or open, when onScanError says so, and the audit says it).
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runStage } from '../../../test/harness/run-stage.ts';
import { configSchema } from '../../config/schema.ts';
import { ParsePool } from '../../llm/parse-pool.ts';
import { RequestContext } from '../../pipeline/context.ts';
import type { StageDescriptor } from '../../pipeline/stage.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { dlpSetup } from './engine.ts';
import { dlpRequestStage } from './request-stage.ts';
import { dlpResponseStage } from './response-stage.ts';
import { INLINE_SCAN_MAX_BYTES } from './scan-job.ts';

const pool = new ParsePool({ threads: 1 });
afterAll(() => pool.close());

const dlpConfig = (onError: 'block' | 'allow' = 'block') => ({
  inspect: 'both',
  policies: [{ name: 'default', onError, detectors: { EMAIL: 'pseudonymise', US_SSN: 'redact' } }],
});

/** The DLP stages with the default engine, on `parsePool` (none: every scan inline). */
function stages(parsePool: ParsePool | undefined): StageDescriptor[] {
  const wrap = (d: StageDescriptor): StageDescriptor => ({
    ...d,
    always: true,
    create: (config, deps) => d.create(config, { ...deps, parsePool }),
  });
  return [wrap(dlpRequestStage(dlpSetup)), wrap(dlpResponseStage(dlpSetup))];
}

/** A chat completion of about 200 KiB of prose with personal data near its end. */
function bigCompletion(): string {
  const filler = 'The quarterly numbers look fine overall, and the outlook is steady. '.repeat(3000);
  const content = `${filler}Write to [EMAIL_1] or carol@example.org; her SSN is 212-67-4391. ${filler.slice(0, 500)}`;
  return JSON.stringify({
    id: 'x',
    object: 'chat.completion',
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  });
}

async function run(parsePool: ParsePool | undefined, onError: 'block' | 'allow' = 'block') {
  const body = bigCompletion();
  expect(body.length).toBeGreaterThan(INLINE_SCAN_MAX_BYTES);
  return runStage({
    stages: ['llm.api_shape'],
    config: { dlp: dlpConfig(onError) },
    extraStages: stages(parsePool),
    request: {
      path: '/v1/chat/completions',
      body: { model: 'm', messages: [{ role: 'user', content: 'I am alice@example.com' }] },
    },
    response: { headers: { 'content-length': String(body.length) }, chunks: [body] },
  });
}

describe('large JSON responses on the parse pool', () => {
  it('redacts and restores like an inline scan, and asks Envoy to wait for the answer', async () => {
    const offLoop = await run(pool);
    const inline = await run(undefined);
    const content: string = JSON.parse(offLoop.client!.body).choices[0].message.content;
    expect(content).toContain('Write to alice@example.com or [EMAIL_2]; her SSN is [REDACTED:US_SSN].');
    expect(content).not.toContain('carol@example.org');
    expect(offLoop.client!.body).toBe(inline.client!.body);
    expect(offLoop.audit.dlp).toEqual(inline.audit.dlp);
    expect(offLoop.audit.dlp?.findings.map((f) => `${f.where} ${f.type}`)).toEqual([
      'request EMAIL',
      'response EMAIL',
      'response US_SSN',
    ]);
    // override_message_timeout: only the off-loop scan needs the longer deadline.
    const waits = (r: typeof offLoop) => r.answers.filter((a) => a.overrideMessageTimeout !== undefined).length;
    expect(waits(offLoop)).toBeGreaterThan(0);
    expect(waits(inline)).toBe(0);
    const length = offLoop.answers
      .find((a) => a.responseBody !== undefined)!
      .responseBody!.response!.headerMutation!.setHeaders!.find((h) => h.header?.key === 'content-length');
    expect(Buffer.from(length!.header!.rawValue!).toString()).toBe(String(Buffer.byteLength(offLoop.client!.body)));
  });

  it('returns a promise and marks the phase slow, leaving the event loop to others', async () => {
    const config = configSchema.parse({ audit: { path: '-' }, dlp: dlpConfig() });
    const deps = { logger: pino({ level: 'silent' }), metrics: new Metrics({ defaultMetrics: false }) };
    const stage = stages(pool)[1]!.create(config, deps as never);
    const ctx = new RequestContext(config);
    ctx.api = 'openai.chat';
    ctx.parsed = { objectStart: 0 } as never;
    ctx.status = 200;
    ctx.responseHeaders.set('content-type', 'application/json');
    stage.onResponseHeaders!(ctx);
    // The scan is a job for the pool's worker thread, not work on this one. (Whether a timer
    // set now fires first is a race the worker may win on a loaded machine.)
    const scans = vi.spyOn(pool, 'scanDlp');
    const pending = stage.onResponseBody!(ctx, Buffer.from(bigCompletion()), true);
    expect(pending).toBeInstanceOf(Promise);
    expect(ctx.out.slow).toBe(true);
    expect(scans).toHaveBeenCalledTimes(1);
    const out = await pending;
    scans.mockRestore();
    expect(out.toString()).toContain('her SSN is [REDACTED:US_SSN]');
  });

  it('scans under the policy dlp.assign gave the request (its config goes to the worker)', async () => {
    const body = bigCompletion();
    const dlp = {
      inspect: 'both',
      assign: [{ from: { tenants: ['clinic'] }, policy: 'strict' }],
      policies: [
        { name: 'default', detectors: { EMAIL: 'warn' } },
        { name: 'strict', detectors: { EMAIL: 'block' } },
      ],
    };
    const as = (tenant: string) =>
      runStage({
        stages: ['llm.api_shape'],
        config: { dlp },
        given: {
          principal: {
            id: `${tenant}-svc`,
            tenant,
            team: undefined,
            user: undefined,
            roles: [],
            attributes: {},
            method: 'api_key',
            issuer: 'config',
            scope: undefined,
          },
        },
        extraStages: stages(pool),
        request: { path: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } },
        response: { headers: { 'content-length': String(body.length) }, chunks: [body] },
      });
    const clinic = await as('clinic');
    expect(clinic.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.EMAIL' });
    const other = await as('acme');
    expect(other.refused).toBeUndefined();
    expect(JSON.parse(other.client!.body).choices[0].message.content).toContain('carol@example.org');
    expect(other.audit.dlp?.findings.map((f) => `${f.where} ${f.type} ${f.action}`)).toEqual([
      'response EMAIL warn',
      'response US_SSN redact',
    ]);
  });

  it('fails closed when the worker scan fails', async () => {
    const broken = new ParsePool({ threads: 1 });
    await broken.close();
    const r = await run(broken);
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.scan_error' });
    expect(r.client?.body ?? '').not.toContain('carol@example.org');
    expect(r.audit.outcome).toBe('rejected');
  });

  it('passes the body unchecked when onScanError is allow, and the audit says so', async () => {
    const broken = new ParsePool({ threads: 1 });
    await broken.close();
    const r = await run(broken, 'allow');
    expect(r.refused).toBeUndefined();
    expect(JSON.parse(r.client!.body).choices[0].message.content).toContain('carol@example.org');
    expect(r.audit.dlp?.failed_open).toBe('response scan failed');
  });
});
