// Large request bodies are scanned on the parse pool's workers (the event loop stays free for
// other streams), with the same result as inline, and a worker failure fails the request closed.
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.ts';
import { KeyRegistry } from '../../identity/jwt/key-registry.ts';
import { KillBoard } from '../../killswitch/kill-set.ts';
import { ParsePool } from '../../llm/parse-pool.ts';
import { parseRequestBody } from '../../llm/shapes.ts';
import { RequestContext } from '../../pipeline/context.ts';
import { GateError } from '../../pipeline/errors.ts';
import { systemClock } from '../../pipeline/stage.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { collectHits } from './body-scan.ts';
import { dlpSetup } from './engine.ts';
import { dlpRequestStage } from './request-stage.ts';
import { INLINE_SCAN_MAX_BYTES } from './scan-job.ts';

const pool = new ParsePool({ threads: 1 });
afterAll(() => pool.close());

const config = configSchema.parse({ audit: { path: '-' }, dlp: { inspect: 'request' } });
const metrics = new Metrics({ defaultMetrics: false });
const logger = pino({ level: 'silent' });
const deps = {
  logger,
  metrics,
  clock: systemClock,
  kills: new KillBoard(),
  jwtKeys: new KeyRegistry({ metrics, logger, clock: systemClock }),
  parsePool: pool,
};

function bigBody(secret: string): Buffer {
  const filler = 'The quarterly numbers look fine overall. '.repeat(40);
  const messages = Array.from({ length: 60 }, (_, i) => ({
    role: 'user',
    content: i === 41 ? `ssn 212-67-4391 ${secret}` : filler,
  }));
  return Buffer.from(JSON.stringify({ model: 'm', messages }));
}

async function judge(body: Buffer) {
  const ctx = new RequestContext(config);
  const parsed = parseRequestBody('openai.chat', body);
  if (!parsed.ok) throw new Error('bad body');
  ctx.parsed = parsed.request;
  const stage = dlpRequestStage(dlpSetup).create(config, deps);
  const pending = stage.onRequestBody!(ctx, body);
  return { ctx, pending };
}

describe('large bodies on the parse pool', () => {
  it('scans a body over the inline limit on a worker, with the inline result', async () => {
    const body = bigBody('');
    expect(body.length).toBeGreaterThan(INLINE_SCAN_MAX_BYTES);
    const { ctx, pending } = await judge(body);
    expect(pending).toBeInstanceOf(Promise);
    expect(ctx.out.slow).toBe(true);
    await pending;
    expect(ctx.dataClasses).toEqual(new Set(['PII']));
    expect(ctx.requestBodyEdits?.map((e) => e.insert.toString())).toEqual(['[REDACTED:US_SSN]']);
    const setup = dlpSetup(config)!;
    const inline = collectHits(body, 0, setup.engine.scanner, { skipModel: true, budgetMs: Infinity });
    expect(await pool.scanDlp({ policy: setup.policy!, from: 0, skipModel: true }, body)).toEqual(inline);
  });

  it('a block found on the worker refuses the request', async () => {
    const { pending } = await judge(bigBody('AKIAQ3EGRZ7XKBN2LM4P'));
    const err = await (pending as Promise<void>).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GateError);
    expect((err as GateError).ruleId).toBe('dlp.AWS_ACCESS_KEY');
  });

  it('a member name found on the worker refuses the request, as inline', async () => {
    const body = JSON.parse(bigBody('').toString());
    body.tools = [{ type: 'function', function: { name: 'f', parameters: { properties: { 'ssn 212-67-4391': {} } } } }];
    const { pending } = await judge(Buffer.from(JSON.stringify(body)));
    const err = await (pending as Promise<void>).catch((e: unknown) => e);
    expect((err as GateError).ruleId).toBe('dlp.US_SSN');
  });

  it('a failed worker scan fails closed', async () => {
    const broken = new ParsePool({ threads: 1 });
    await broken.close();
    const ctx = new RequestContext(config);
    const body = bigBody('');
    const parsed = parseRequestBody('openai.chat', body);
    ctx.parsed = parsed.ok ? parsed.request : undefined;
    const stage = dlpRequestStage(dlpSetup).create(config, { ...deps, parsePool: broken });
    const err = await (stage.onRequestBody!(ctx, body) as Promise<void>).catch((e: unknown) => e);
    expect((err as GateError).ruleId).toBe('dlp.scan_error');
  });
});
