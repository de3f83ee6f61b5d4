import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { INLINE_PARSE_MAX_BYTES, ParsePool, parseRequest } from './parse-pool.ts';
import { DEFAULT_MAX_JSON_DEPTH, parseRequestBody, type RequestParseResult } from './shapes.ts';

const limits = { maxDepth: DEFAULT_MAX_JSON_DEPTH };

/** A chat body of about `bytes` bytes. */
function chatBody(bytes: number, extra = ''): Buffer {
  const message = '{"role":"user","content":"hello there"},';
  const n = Math.max(1, Math.ceil(bytes / message.length));
  return Buffer.from(`{"model":"m","stream":true${extra},"messages":[${message.repeat(n).slice(0, -1)}]}`);
}

/** A worker module that exits on a body starting with '!', throws on '?', else parses. */
const shapesUrl = new URL('./shapes.ts', import.meta.url).href;
const crashingWorker = new URL(
  `data:text/javascript,${encodeURIComponent(`
import { parentPort } from 'node:worker_threads';
import { parseRequestBody } from '${shapesUrl}';
parentPort.on('message', (job) => {
  if (job.body[0] === 0x21) process.exit(7);
  if (job.body[0] === 0x3f) throw new Error('boom');
  const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
  parentPort.postMessage({ id: job.id, result: parseRequestBody(job.kind, body, job.limits) });
});`)}`,
);

const pools: ParsePool[] = [];
const pool = (threads: number, workerUrl?: URL): ParsePool => {
  const p = new ParsePool({ threads, workerUrl });
  pools.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('ParsePool', () => {
  it('starts a thread only when a job needs one, at most `threads`, and answers the first job within the slow path deadline', async () => {
    const p = pool(2);
    // An idle worker isolate is ~14 MiB of RSS: a pool nobody used holds none.
    expect(p.started).toBe(0);
    const t0 = performance.now();
    expect(await p.parse('openai.chat', chatBody(100_000), limits)).toMatchObject({ ok: true });
    // The first big body waits for the thread to boot: well inside server.maxMessageDeadlineMs
    // (1.5 s by default), here even from source, where the worker loads Node's type stripper.
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(p.started).toBe(1);
    const results = await Promise.all([1, 2, 3].map(() => p.parse('openai.chat', chatBody(100_000), limits)));
    for (const r of results) expect(r).toMatchObject({ ok: true });
    expect(p.started).toBe(2);
  });

  it('parses on a worker exactly as inline', async () => {
    const p = pool(2);
    for (const body of [
      chatBody(200_000),
      chatBody(100_000, ',"stream_options":{"include_usage":false}'),
      Buffer.from('{"model":"a","MODEL":"b","messages":[]}'),
      Buffer.from(`{"model":"m","messages":${'['.repeat(20_000)}}`),
      Buffer.from('\uFEFF{"model":"m","messages":[],"stream":true,"stream_options":null}'),
    ])
      expect(await p.parse('openai.chat', body, limits)).toEqual(parseRequestBody('openai.chat', body, limits));
  });

  it('passes the limits', async () => {
    const body = Buffer.from('{"model":"m","messages":[[[]]]}');
    expect(await pool(1).parse('openai.chat', body, { maxDepth: 3 })).toMatchObject({
      ok: false,
      code: 'json_too_deep',
    });
  });

  it('finds where a default max_tokens goes only when asked (policy.defaultMaxTokens set)', async () => {
    const body = chatBody(100_000);
    const asked = await pool(1).parse('openai.chat', body, { ...limits, maxTokensSlot: true });
    expect(asked.ok && asked.request.maxTokensSlot).toMatchObject({ before: '"max_tokens":', after: ',' });
    const not = await pool(1).parse('openai.chat', body, limits);
    expect(not.ok && not.request.maxTokensSlot).toBeUndefined();
  });

  it('copies a view into a larger buffer, leaving that buffer usable', async () => {
    const backing = Buffer.from(`xxxx{"model":"view","messages":[]}yyyy`);
    const view = backing.subarray(4, backing.length - 4);
    const r = await pool(1).parse('openai.chat', view, limits);
    expect(r).toMatchObject({ ok: true, request: { model: 'view' } });
    expect(backing.buffer.byteLength).toBeGreaterThan(0);
    expect(backing.toString()).toBe('xxxx{"model":"view","messages":[]}yyyy');
  });

  it('runs jobs first come, first served', async () => {
    const p = pool(1);
    const done: number[] = [];
    const jobs = Array.from({ length: 6 }, (_, i) =>
      p.parse('openai.chat', chatBody(i % 2 === 0 ? 300_000 : 100), limits).then(() => done.push(i)),
    );
    await Promise.all(jobs);
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('rejects at once, with an AbortError, when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(pool(1).parse('openai.chat', chatBody(100), limits, ac.signal)).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('drops a queued job whose signal aborts, before the job ahead of it finishes', async () => {
    const p = pool(1);
    const order: string[] = [];
    const first = p.parse('openai.chat', chatBody(2_000_000), limits).then(() => order.push('first'));
    const ac = new AbortController();
    const queued = p.parse('openai.chat', chatBody(100), limits, ac.signal).catch((e: Error) => {
      order.push(e.name);
    });
    ac.abort();
    await Promise.all([first, queued]);
    expect(order).toEqual(['AbortError', 'first']);
    // The pool still works.
    expect((await p.parse('openai.chat', chatBody(100), limits)).ok).toBe(true);
  });

  it('drops the result of a running job whose signal aborts', async () => {
    const p = pool(1);
    const ac = new AbortController();
    const running = p.parse('openai.chat', chatBody(2_000_000), limits, ac.signal);
    setTimeout(() => ac.abort(), 1);
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect((await p.parse('openai.chat', chatBody(100), limits)).ok).toBe(true);
  });

  it('replaces a worker that exits or throws; its job rejects with an Error', async () => {
    const p = pool(1, crashingWorker);
    const ok = chatBody(100);
    expect((await p.parse('openai.chat', ok, limits)).ok).toBe(true);
    await expect(p.parse('openai.chat', Buffer.from('!'), limits)).rejects.toThrow(/exited \(code 7\)/);
    expect((await p.parse('openai.chat', ok, limits)).ok).toBe(true);
    await expect(p.parse('openai.chat', Buffer.from('?'), limits)).rejects.toThrow(/crashed: boom/);
    // Jobs queued behind a crash still run.
    const results = await Promise.allSettled([
      p.parse('openai.chat', Buffer.from('!'), limits),
      p.parse('openai.chat', ok, limits),
      p.parse('openai.chat', ok, limits),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
  });

  it('rejects every job when a worker cannot even start, and never hangs', async () => {
    const p = pool(1, new URL('./no-such-worker.ts', import.meta.url));
    await expect(p.parse('openai.chat', chatBody(100), limits)).rejects.toThrow(/parse worker/);
    await expect(p.parse('openai.chat', chatBody(100), limits)).rejects.toThrow(/parse worker/);
  });

  it('close() rejects pending jobs and later ones', async () => {
    const p = new ParsePool({ threads: 1 });
    const pending = Promise.allSettled([
      p.parse('openai.chat', chatBody(1_000_000), limits),
      p.parse('openai.chat', chatBody(100), limits),
    ]);
    await p.close();
    for (const r of await pending) expect(r.status).toBe('rejected');
    await expect(p.parse('openai.chat', chatBody(100), limits)).rejects.toThrow(/closed/);
  });

  it('never keeps the process alive, and loads its worker when the gate runs from source', async () => {
    // A plain `node file.ts`, as `node extproc/main.ts` runs: no close(), yet the process exits.
    const poolModule = fileURLToPath(new URL('./parse-pool.ts', import.meta.url));
    const script = `
      import { ParsePool } from ${JSON.stringify(poolModule)};
      const pool = new ParsePool({ threads: 2 });
      const body = Buffer.from('{"model":"from-worker","messages":[' + '{"role":"user","content":"x"},'.repeat(5000) + '{}]}');
      const r = await pool.parse('openai.chat', body, { maxDepth: 64 });
      console.log(JSON.stringify(r));`;
    const dir = await mkdtemp(join(tmpdir(), 'parse-pool-'));
    try {
      const file = join(dir, 'main.ts');
      await writeFile(file, script);
      const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 20_000 });
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, request: { model: 'from-worker' } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('parseRequest', () => {
  it('parses small bodies inline: a result, not a promise', () => {
    const p = pool(1);
    const small = chatBody(INLINE_PARSE_MAX_BYTES - 200);
    expect(small.length).toBeLessThanOrEqual(INLINE_PARSE_MAX_BYTES);
    const r = parseRequest(p, 'openai.chat', small, limits, () => {
      throw new Error('the inline path must not ask for a signal');
    });
    expect(r).not.toBeInstanceOf(Promise);
    expect((r as RequestParseResult).ok).toBe(true);
  });

  it('parses big bodies on the pool', async () => {
    const big = chatBody(INLINE_PARSE_MAX_BYTES + 100);
    let asked = 0;
    const r = parseRequest(pool(1), 'openai.chat', big, limits, () => {
      asked++;
      return new AbortController().signal;
    });
    expect(r).toBeInstanceOf(Promise);
    expect(asked).toBe(1);
    expect(await r).toEqual(parseRequestBody('openai.chat', big, limits));
  });

  it('parses inline without a pool, whatever the size', () => {
    const r = parseRequest(undefined, 'openai.chat', chatBody(200_000), limits);
    expect(r).not.toBeInstanceOf(Promise);
    expect((r as RequestParseResult).ok).toBe(true);
  });
});
