// dlp.response: every text the client receives from the model is scanned before it is released.
// Streams (SSE, NDJSON) are read event by event: each choice's content and each tool call's
// arguments is a channel with its own hold-back (stream-guard.ts), and the event is rewritten to
// carry only what may be released; what a channel still holds goes out with the choice's last
// event (finish_reason, or Ollama's done). A block ends the stream with an OpenAI-style error
// event and nothing after it. JSON responses are held whole (bounded by
// server.maxBufferedResponseBytes), scanned like request bodies, and answered rewritten or
// refused. Placeholders the request stage issued are restored for this caller, and only those.
//
// Fail closed: a response the gate cannot read (compressed though the gate asked upstream not to,
// or in a format it does not know) is refused instead of passed on unread, and so is a scan
// that throws.
import { applyBodyEdits } from '../../llm/body-edits.ts';
import type { ResponseEvent } from '../../llm/response-stream.ts';
import { needsBody } from '../../llm/shapes.ts';
import { responseFormat, utf8Charset } from '../../llm/usage.ts';
import type { RequestContext } from '../../pipeline/context.ts';
import { refuse } from '../../pipeline/errors.ts';
import { defineSlot } from '../../pipeline/slots.ts';
import { defineStage, type StageDeps } from '../../pipeline/stage.ts';
import type { DlpPolicyConfig } from '../config.ts';
import {
  applyHits,
  type BodyScan,
  type CollectedHits,
  collectHits,
  type FindingRecord,
  ScanBudgetExceeded,
} from './body-scan.ts';
import type { DlpEngine, DlpFinding, DlpSession } from './engine-port.ts';
import {
  copyEvent,
  extraTexts,
  objectAt,
  ollamaContextSpan,
  otherStrings,
  pathText,
  type ResponseFamily,
  responseFamily,
  setAt,
  setExtra,
  tokenDetailsIn,
  tokenDetailsInAnswer,
} from './event-texts.ts';
import { blockMessage, type DlpGateOptions, type DlpGateResolver, TOKEN_DETAILS_RULE } from './request-stage.ts';
import { INLINE_SCAN_MAX_BYTES } from './scan-job.ts';
import { addFinding, dlpState, peekDlpState } from './state.ts';
import { StreamGuard } from './stream-guard.ts';

/** Per response: the stream's channels, or the JSON body's chunks held until its end. */
interface ResponseDlp {
  /** The policy the request was scanned under (dlp.request's pick), or the caller's. */
  engine: DlpEngine;
  options: DlpGateOptions;
  /** The policy config, for the parse pool's workers (large JSON bodies). */
  policy: DlpPolicyConfig | undefined;
  guards: Map<string, StreamGuard>;
  /** TGI: the spans (type:start:end) found in the token text, which generated_text repeats. */
  tokenSpans: Set<string> | undefined;
  json: Buffer[] | undefined;
  jsonBytes: number;
  /** A value of this stream was replaced (Ollama's context must not give it back). */
  replaced: boolean;
  /** The stream's last event with data: what an event sent at [DONE] is modelled on. */
  last: Readonly<Record<string, unknown>> | undefined;
}
const slot = defineSlot<ResponseDlp>('dlp.response');
const EMPTY = Buffer.alloc(0);

export function dlpResponseStage(resolve: DlpGateResolver) {
  return defineStage({
    name: 'dlp.response',
    summary:
      'Scans every text of the response before the client gets it (streams with a hold-back), and restores pseudonyms for the caller.',
    needs: ['api', 'parsed'],
    provides: [],
    create: (config, deps) => {
      const setup = resolve(config, deps);
      if (setup === undefined || !setup.options.response) return {};
      const pool = deps.parsePool;
      const maxJson = config.server.maxBufferedResponseBytes;
      return {
        onResponseHeaders(ctx: RequestContext): void {
          if (ctx.parsed === undefined || !needsBody(ctx.api)) return;
          const status = ctx.status ?? 0;
          if (status < 200 || status >= 300) return;
          const encoding = ctx.responseHeaders.get('content-encoding');
          const contentType = ctx.responseHeaders.get('content-type');
          const format = responseFormat(contentType);
          // A charset other than UTF-8 is text the scan, which decodes UTF-8, would not see.
          if ((encoding !== undefined && encoding !== 'identity') || format === 'other' || !utf8Charset(contentType))
            throw refuse(
              'content_blocked',
              'The response could not be checked for sensitive data, so it was not sent.',
              {
                ruleId: 'dlp.response_unreadable',
              },
            );
          const chosen = peekDlpState(ctx)?.setup ?? setup.pick?.(ctx.principal) ?? setup;
          const state: ResponseDlp = {
            engine: chosen.engine,
            options: chosen.options,
            policy: chosen.policy,
            guards: new Map(),
            tokenSpans: undefined,
            json: undefined,
            jsonBytes: 0,
            replaced: false,
            last: undefined,
          };
          if (format === 'json') {
            // A declared length over the limit could never be checked: refused now, while Envoy
            // may still hold the headers, instead of at a body chunk, when the client may already
            // have the 200 (STREAMED) and the record could not tell which it saw.
            const length = ctx.responseHeaders.get('content-length');
            if (length !== undefined && /^\d+$/.test(length) && Number(length) > maxJson) throw tooLarge();
            state.json = [];
            ctx.responseBodyRewritten = true;
            ctx.readResponseBody();
          } else {
            ctx.readResponseBody({ events: true });
          }
          ctx.set(slot, state);
        },
        onResponseEvent(ctx: RequestContext, event: ResponseEvent): void {
          const state = ctx.get(slot);
          if (state === undefined) return;
          onEvent(ctx, event, state, state.engine, state.options, deps);
        },
        onResponseBody(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer | Promise<Buffer> {
          const state = ctx.get(slot);
          if (state?.json === undefined) return chunk;
          state.jsonBytes += chunk.length;
          if (state.jsonBytes > maxJson) throw tooLarge();
          if (chunk.length > 0) state.json.push(chunk);
          if (!endOfStream) return EMPTY;
          const body = state.json.length === 1 ? state.json[0]! : Buffer.concat(state.json);
          state.json = [];
          const { engine, options, policy } = state;
          if (pool !== undefined && policy !== undefined && body.length > INLINE_SCAN_MAX_BYTES) {
            // Off the event loop (up to 1 MiB scans in tens of ms), under the request's policy;
            // the state machine asks Envoy to wait longer for this answer.
            ctx.out.slow = true;
            const first = jsonStart(body);
            return pool.scanDlp({ policy, from: first, skipModel: false }, body, ctx.signal).then(
              (hits) => applyResponseHits(ctx, body, hits, engine, options, deps),
              (err: unknown) => scanFailed(ctx, body, err, options, deps),
            );
          }
          return scanJsonResponse(ctx, body, engine, options, deps);
        },
      };
    },
  });
}

function tooLarge() {
  return refuse('content_blocked', 'The response is too large to be checked for sensitive data.', {
    ruleId: 'dlp.response_too_large',
  });
}

/** Where the body's JSON value starts: past a UTF-8 BOM and whitespace, and nothing else (bytes
 * skipped here would reach the client unscanned; a body that is not JSON fails the walk). */
function jsonStart(body: Buffer): number {
  let first = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (
    first < body.length &&
    (body[first] === 0x20 || body[first] === 0x0a || body[first] === 0x0d || body[first] === 0x09)
  )
    first++;
  return first;
}

function scanJsonResponse(
  ctx: RequestContext,
  body: Buffer,
  engine: DlpEngine,
  options: DlpGateOptions,
  deps: StageDeps,
): Buffer {
  let hits: CollectedHits;
  try {
    hits = collectHits(body, jsonStart(body), engine.scanner, {
      skipModel: false,
      budgetMs: options.scanBudgetMs,
      keepTexts: true,
    });
  } catch (err) {
    return scanFailed(ctx, body, err, options, deps);
  }
  return applyResponseHits(ctx, body, hits, engine, options, deps);
}

/** The scan threw, ran past its budget or its worker failed: refused, unless onScanError lets
 * the body through unchecked (and the audit says so). */
function scanFailed(ctx: RequestContext, body: Buffer, err: unknown, options: DlpGateOptions, deps: StageDeps): Buffer {
  deps.logger.error({ err: (err as Error).name }, 'dlp: response scan failed');
  if (options.onScanError === 'block')
    throw refuse('content_blocked', 'The response could not be checked for sensitive data, so it was not sent.', {
      ruleId: err instanceof ScanBudgetExceeded ? 'dlp.scan_budget' : 'dlp.scan_error',
    });
  dlpState(ctx).failedOpen = 'response scan failed';
  return body;
}

/** Hits (found inline or on a worker) to the body the client gets, on the main thread, which
 * owns the request's pseudonym session. */
function applyResponseHits(
  ctx: RequestContext,
  body: Buffer,
  hits: CollectedHits,
  engine: DlpEngine,
  options: DlpGateOptions,
  deps: StageDeps,
): Buffer {
  const dlp = dlpState(ctx);
  const session = dlp.session ?? engine.newSession();
  let scan: BodyScan;
  try {
    scan = applyHits(body, hits, session, 'response', session);
  } catch (err) {
    return scanFailed(ctx, body, err, options, deps);
  }
  record(ctx, scan.findings, deps);
  if (scan.blocked !== undefined) {
    const ruleId = `dlp.${scan.blocked.type}`;
    ctx.decide({ stage: 'dlp.response', ruleId, effect: 'deny', reason: `${scan.blocked.type} in the response` });
    throw refuse('content_blocked', blockMessage(scan.blocked.type, 'response'), { ruleId });
  }
  // Per-token texts (OpenAI's and Ollama's logprobs, vLLM's prompt_logprobs, TGI's details) list
  // the answer one token at a time, each a string of its own: a value changed in the text would
  // be rebuilt from them, and no one token holds enough of it to be found. Fail closed: such an
  // answer is refused rather than sent with the value in pieces.
  const details = scan.edits.length > 0 ? tokenDetailsInAnswer(body, responseFamily(ctx.api)) : undefined;
  if (details !== undefined) {
    ctx.decide({
      stage: 'dlp.response',
      ruleId: TOKEN_DETAILS_RULE,
      effect: 'deny',
      reason: `a changed text is also in per-token details (${details})`,
    });
    throw refuse(
      'content_blocked',
      'The response could not be released with its per-token details; ask without them (logprobs, details).',
      { ruleId: TOKEN_DETAILS_RULE },
    );
  }
  if (scan.edits.length === 0) return body;
  // Ollama's context is the token ids of the exchange as the model wrote it: with the text
  // changed, they would give back what DLP took out. [] is what Ollama reads as no context.
  const context = ctx.api === 'ollama.generate' ? ollamaContextSpan(body) : undefined;
  if (context !== undefined) scan.edits.push({ start: context[0], end: context[1], insert: EMPTY_LIST });
  return applyBodyEdits(body, scan.edits);
}

const EMPTY_LIST = Buffer.from('[]');

function record(ctx: RequestContext, findings: readonly FindingRecord[], deps: StageDeps): void {
  if (findings.length === 0) return;
  const dlp = dlpState(ctx);
  for (const f of findings) addFinding(dlp, f);
  deps.metrics.countDlpFindings(findings, 'response');
}

/** What one event's rewrite needs: per choice, its released content and tool arguments; TGI's
 * last event, its whole generated_text. */
interface Rewrite {
  content: Map<number, string>;
  tools: Map<string, string>;
  /** Reasoning, refusals, legacy function-call arguments, thinking: by channel key. */
  extras: Map<string, string>;
  generatedText?: string;
}

const newRewrite = (): Rewrite => ({ content: new Map(), tools: new Map(), extras: new Map() });

/** Text a channel let go of (key from guard()), after what the rewrite already carries for it. */
function addReleased(w: Rewrite, key: string, choice: number, text: string): void {
  if (key.startsWith('c')) w.content.set(choice, (w.content.get(choice) ?? '') + text);
  else if (key.startsWith('x')) w.extras.set(key, (w.extras.get(key) ?? '') + text);
  else w.tools.set(key, (w.tools.get(key) ?? '') + text);
}

function onEvent(
  ctx: RequestContext,
  event: ResponseEvent,
  state: ResponseDlp,
  engine: DlpEngine,
  options: DlpGateOptions,
  deps: StageDeps,
): void {
  const dlp = dlpState(ctx);
  dlp.session ??= engine.newSession();
  const session: DlpSession = dlp.session;
  const family = responseFamily(ctx.api);
  const tgi = family === 'tgi';
  // Per-token texts go out with their chunk, before the hold-back has judged the text around
  // them: a stream carrying them is ended before this event (dlp.request refuses a stream that
  // asks for them; this is an upstream that sends them unasked).
  const details = tokenDetailsIn(event.data, family);
  if (details !== undefined) {
    ctx.decide({ stage: 'dlp.response', ruleId: TOKEN_DETAILS_RULE, effect: 'deny', reason: `${details} in a stream` });
    ctx.endResponseStream(
      refuse('content_blocked', `The response was stopped: its per-token details (${details}) cannot be checked.`, {
        ruleId: TOKEN_DETAILS_RULE,
      }),
    );
    return;
  }
  const guard = (key: string, path: string): StreamGuard => {
    let g = state.guards.get(key);
    if (g === undefined) {
      g = new StreamGuard(engine.scanner, session, (f) => {
        if (tgi) {
          // TGI's last event repeats the token text whole in generated_text: a value found in
          // both is one finding (redacted in both), recorded and counted once.
          const span = `${f.type}:${f.start}:${f.end}`;
          if (key === 'c0') {
            state.tokenSpans ??= new Set();
            state.tokenSpans.add(span);
          } else if (key === 'g0' && state.tokenSpans?.delete(span)) return;
        }
        addFinding(dlp, { type: f.type, action: f.action, where: 'response', path, start: f.start, end: f.end });
        deps.metrics.countDlpFinding(f.type, f.action, 'response');
        if (f.action !== 'warn') state.replaced = true;
      });
      state.guards.set(key, g);
    }
    return g;
  };
  const block = (f: DlpFinding): void => {
    const ruleId = `dlp.${f.type}`;
    ctx.decide({ stage: 'dlp.response', ruleId, effect: 'deny', reason: `${f.type} in the response` });
    ctx.endResponseStream(refuse('content_blocked', blockMessage(f.type, 'response'), { ruleId }));
  };
  /** A scan threw: the stream ends (true), unless the policy lets it through unchecked, which
   * the audit then says. */
  const scanFailed = (err: unknown): boolean => {
    deps.logger.error({ err: (err as Error).name }, 'dlp: response scan failed');
    if (options.onScanError === 'block') {
      ctx.endResponseStream(
        refuse('content_blocked', 'The response could not be checked for sensitive data.', {
          ruleId: 'dlp.scan_error',
        }),
      );
      return true;
    }
    dlp.failedOpen = 'response scan failed';
    return false;
  };
  // An SSE event's lines that are not data (comments, event:, id:, fields no client reads) reach
  // the client too. No server puts model text there and no SDK reads it back, so they are judged
  // whole and never rewritten: a finding there ends the stream, whatever its action but warn.
  if (event.otherLines.length > 0) {
    try {
      const f = judgeOtherLines(event.otherLines, engine, (f, path) => {
        // Recorded as what was done: the line is never rewritten, so a finding there blocks.
        const action = f.action === 'warn' ? 'warn' : 'block';
        addFinding(dlp, { type: f.type, action, where: 'response', path, start: f.start, end: f.end });
        deps.metrics.countDlpFinding(f.type, action, 'response');
      });
      if (f !== undefined) {
        block(f);
        return;
      }
    } catch (err) {
      if (scanFailed(err)) return;
    }
  }
  if (event.end) {
    // [DONE] and a channel still holds text: upstream never said its choice was finished. What
    // it holds is judged now and goes out in an event of its own, before [DONE] (an OpenAI-style
    // chunk: only OpenAI-compatible streams end so; in another, held text stays held).
    if (family !== 'openai') return;
    try {
      const held = newRewrite();
      const choices = new Set<number>();
      for (const [key, g] of state.guards) {
        if (g.holding === 0) continue;
        const r = g.flush();
        if (r.blocked) {
          block(r.blocked);
          return;
        }
        const choice = Number(key.slice(1, key.includes('/') ? key.indexOf('/') : undefined));
        choices.add(choice);
        addReleased(held, key, choice, r.text);
      }
      if (choices.size > 0) event.insertBefore(rewritten(lastEventBase(state.last, choices), held, family));
    } catch (err) {
      scanFailed(err);
    }
    return;
  }
  if (Array.isArray(event.data.choices)) state.last = event.data;
  let rewrite: Rewrite | undefined;
  let changed = false;
  try {
    for (const t of event.texts) {
      const r = guard(`c${t.choice}`, `choices[${t.choice}].content`).push(t.text);
      if (r.blocked) {
        block(r.blocked);
        return;
      }
      rewrite ??= newRewrite();
      rewrite.content.set(t.choice, r.text);
      if (r.text !== t.text) changed = true;
    }
    for (const a of event.toolArguments) {
      const key = `t${a.choice}/${a.call}`;
      const r = guard(key, `choices[${a.choice}].tool_calls[${a.call}].arguments`).push(a.text);
      if (r.blocked) {
        block(r.blocked);
        return;
      }
      rewrite ??= newRewrite();
      rewrite.tools.set(key, r.text);
      if (r.text !== a.text) changed = true;
    }
    for (const x of extraTexts(event.data, family)) {
      const r = guard(x.key, x.path).push(x.text);
      if (r.blocked) {
        block(r.blocked);
        return;
      }
      rewrite ??= newRewrite();
      rewrite.extras.set(x.key, r.text);
      if (r.text !== x.text) changed = true;
    }
    // A choice's last event releases what its channels still hold.
    for (const choice of finishedChoices(event.data)) {
      for (const [key, g] of state.guards) {
        if (!ownedBy(key, choice) || g.holding === 0) continue;
        const r = g.flush();
        if (r.blocked) {
          block(r.blocked);
          return;
        }
        rewrite ??= newRewrite();
        addReleased(rewrite, key, choice, r.text);
        changed = true;
      }
    }
    // TGI's last event repeats the whole text in generated_text: scanned whole, on a channel of
    // its own (the same session, so a value gets the placeholder its tokens got), after the
    // token channel let go of what it held, so its findings are known and not counted twice.
    const whole = event.data.generated_text;
    if (typeof whole === 'string' && whole.length > 0) {
      const g = guard('g0', 'generated_text');
      const pushed = g.push(whole);
      const r = pushed.blocked === undefined ? g.flush() : pushed;
      if (r.blocked) {
        block(r.blocked);
        return;
      }
      rewrite ??= newRewrite();
      rewrite.generatedText = pushed.text + r.text;
      if (rewrite.generatedText !== whole) changed = true;
    }
  } catch (err) {
    // Ended (fail closed), or let through unchecked, as configured: the event goes as it came.
    scanFailed(err);
    return;
  }
  // Every other string of the event (a tool call's name, Ollama's whole tool-call arguments, a
  // member the gate does not know of) is judged whole, as a JSON body's strings are.
  const others: { at: readonly (string | number)[]; text: string }[] = [];
  try {
    /** Names with findings (warn only, or the stream ended): no path the audit keeps spells them. */
    let dirty: Set<string> | undefined;
    const report = (f: DlpFinding, path: string, action: string) => {
      addFinding(dlp, { type: f.type, action, where: 'response', path, start: f.start, end: f.end });
      deps.metrics.countDlpFinding(f.type, action, 'response');
    };
    for (const o of otherStrings(event.data, family)) {
      if (o.name) {
        // A name the model wrote (Ollama's arguments object): it cannot be rewritten (two names
        // could become one), so a finding there ends the stream, whatever its action but warn.
        const findings = engine.scanner.scan(o.text);
        if (findings.length === 0) continue;
        dirty ??= new Set();
        dirty.add(o.text);
        const path = maskedPath(o.at.slice(0, -1), dirty);
        const where = path === '' ? '{key}' : `${path}.{key}`;
        const blocked = findings.find((f) => f.action !== 'warn');
        for (const f of findings) report(f, where, f.action === 'warn' ? 'warn' : 'block');
        if (blocked !== undefined) {
          block(blocked);
          return;
        }
        continue;
      }
      const judged = judgeWhole(o.text, session, engine);
      if (judged.findings.length > 0) {
        const path = dirty === undefined ? pathText(o.at) : maskedPath(o.at, dirty);
        for (const f of judged.findings) {
          report(f, path, f.action);
          if (f.action !== 'warn') state.replaced = true;
        }
      }
      if (judged.blocked !== undefined) {
        block(judged.blocked);
        return;
      }
      if (judged.text !== o.text) others.push({ at: o.at, text: judged.text });
    }
  } catch (err) {
    if (scanFailed(err)) return;
  }
  // Ollama's last record carries the exchange's token ids (generate's context): once a value was
  // replaced, they would give it back, so they go out empty ([] is no context to Ollama).
  const context = state.replaced && event.data.done === true && hasItems(event.data.context);
  if ((!changed || rewrite === undefined) && others.length === 0 && !context) return;
  try {
    const next = changed && rewrite !== undefined ? rewritten(event.data, rewrite, family) : copyEvent(event.data);
    for (const o of others) setAt(next as Record<string, unknown>, o.at, o.text);
    if (context) (next as Record<string, unknown>).context = [];
    event.replace(next);
  } catch (err) {
    // An event too deep to copy or serialise again: the changed text cannot go out, and the
    // original must not (fail closed, whatever onScanError says: nothing was left unchecked).
    deps.logger.error({ err: (err as Error).name }, 'dlp: response event could not be rewritten');
    ctx.endResponseStream(
      refuse('content_blocked', 'The response could not be checked for sensitive data.', {
        ruleId: 'dlp.scan_error',
      }),
    );
  }
}

/** An empty OpenAI-compatible chunk for these choices, named like the stream's last one. */
function lastEventBase(
  last: Readonly<Record<string, unknown>> | undefined,
  choices: ReadonlySet<number>,
): Record<string, unknown> {
  const completion = last?.object === 'text_completion';
  const base: Record<string, unknown> = {};
  for (const k of ['id', 'object', 'created', 'model', 'system_fingerprint'])
    if (last?.[k] !== undefined) base[k] = last[k];
  base.choices = [...choices]
    .sort((a, b) => a - b)
    .map((index) =>
      completion ? { index, text: '', finish_reason: null } : { index, delta: {}, finish_reason: null },
    );
  return base;
}

function hasItems(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

/** pathText, with every name in `dirty` written `{key}`. */
function maskedPath(at: readonly (string | number)[], dirty: ReadonlySet<string>): string {
  return pathText(at.map((p) => (typeof p === 'string' && dirty.has(p) ? '{key}' : p)));
}

/** Scan an SSE event's other lines, reporting each finding; the first that is not warn. */
function judgeOtherLines(
  lines: readonly string[],
  engine: DlpEngine,
  report: (f: DlpFinding, path: string) => void,
): DlpFinding | undefined {
  for (const line of lines) {
    const findings = engine.scanner.scan(line);
    if (findings.length === 0) continue;
    const path = sseLinePath(line);
    let blocked: DlpFinding | undefined;
    for (const f of findings) {
      report(f, path);
      if (f.action !== 'warn') blocked ??= f;
    }
    if (blocked !== undefined) return blocked;
  }
  return undefined;
}

/** Where a finding in an SSE line was, for the audit; a field name the gate does not know is not
 * spelled (it may be what was found). */
function sseLinePath(line: string): string {
  if (line.startsWith(':')) return 'sse.comment';
  const colon = line.indexOf(':');
  const name = colon === -1 ? line : line.slice(0, colon);
  return name === 'event' || name === 'id' || name === 'retry' ? `sse.${name}` : 'sse.field';
}

/** One whole string's findings and the text the client gets for it: findings replaced (but
 * warn), this request's placeholders restored between them; `blocked` at a block finding. */
function judgeWhole(
  text: string,
  session: DlpSession,
  engine: DlpEngine,
): { findings: readonly DlpFinding[]; text: string; blocked?: DlpFinding } {
  const findings = engine.scanner.scan(text);
  const restore = (s: string) => (session.issued && s.length > 0 ? session.restore(s) : s);
  if (findings.length === 0) return { findings, text: restore(text) };
  const blocked = findings.find((f) => f.action === 'block');
  if (blocked !== undefined) return { findings, text, blocked };
  let out = '';
  let at = 0;
  for (const f of findings) {
    if (f.action === 'warn') continue;
    out += restore(text.slice(at, f.start)) + session.replace(text.slice(f.start, f.end), f);
    at = f.end;
  }
  return { findings, text: out + restore(text.slice(at)) };
}

function ownedBy(key: string, choice: number): boolean {
  return key === `c${choice}` || key.startsWith(`t${choice}/`) || key.startsWith(`x${choice}/`);
}

/** Choices whose last event this is: OpenAI's finish_reason, Ollama's done, TGI's details. */
function finishedChoices(data: Readonly<Record<string, unknown>>): number[] {
  if (data.done === true) return [0];
  if (data.token !== undefined) return data.details !== null && data.details !== undefined ? [0] : [];
  const choices = data.choices;
  if (!Array.isArray(choices)) return [];
  const out: number[] = [];
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i] as { index?: unknown; finish_reason?: unknown } | null;
    if (c !== null && typeof c === 'object' && c.finish_reason !== null && c.finish_reason !== undefined)
      out.push(typeof c.index === 'number' ? c.index : i);
  }
  return out;
}

/** A copy of the event's JSON with the released texts in place of the upstream ones. */
function rewritten(data: Readonly<Record<string, unknown>>, w: Rewrite, family: ResponseFamily): unknown {
  const next = copyEvent(data) as Record<string, unknown>;
  if (w.generatedText !== undefined) next.generated_text = w.generatedText;
  const choices = next.choices;
  const token = next.token;
  if (token !== null && typeof token === 'object' && !Array.isArray(token)) {
    // TGI: choice 0 is token.text. The last event's token is often special (the end marker),
    // which clients skip: the held tail it releases would be lost there, so it no longer says
    // special (its marker text is dropped, as generated_text drops it).
    const text = w.content.get(0);
    const t = token as Record<string, unknown>;
    if (text !== undefined && (t.special !== true || text.length > 0)) {
      t.text = text;
      t.special = false;
    }
    return next;
  }
  if (!Array.isArray(choices)) {
    // Ollama: choice 0 is message.content (chat) or response (generate), its thinking beside it.
    const thinking = w.extras.get('x0/thinking');
    if (family === 'ollama' && thinking !== undefined) setExtra(next, family, 'x0/thinking', thinking);
    const text = w.content.get(0);
    if (text === undefined) return next;
    const message = next.message as Record<string, unknown> | undefined;
    if (message !== null && typeof message === 'object') message.content = text;
    else next.response = text;
    return next;
  }
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i] as Record<string, unknown>;
    if (c === null || typeof c !== 'object') continue;
    const index = typeof c.index === 'number' ? c.index : i;
    const text = w.content.get(index);
    const chat = next.object !== 'text_completion' && !('text' in c);
    if (text !== undefined) {
      if (chat) {
        objectAt(c, 'delta').content = text;
      } else c.text = text;
    }
    for (const [key, text] of w.extras) if (key.startsWith(`x${index}/`)) setExtra(c, family, key, text);
    for (const [key, args] of w.tools) {
      if (!key.startsWith(`t${index}/`)) continue;
      const call = Number(key.slice(key.indexOf('/') + 1));
      const delta = objectAt(c, 'delta');
      if (!Array.isArray(delta.tool_calls)) delta.tool_calls = [];
      const calls = delta.tool_calls as Record<string, unknown>[];
      let entry = calls.find((x, j) => (typeof x.index === 'number' ? x.index : j) === call);
      if (entry === undefined) {
        entry = { index: call, function: {} };
        calls.push(entry);
      }
      objectAt(entry, 'function').arguments = args;
    }
  }
  return next;
}
