// One channel of streamed text (a choice's content, or one tool call's arguments): deltas go in,
// text safe to release comes out. No byte of a match is released before the match is decided, so
// for every way upstream splits the text, what the client receives, joined, equals the whole
// text with its findings replaced and this request's pseudonyms restored.
//
// The engine's stream (DlpTextStream) says how far the text is decided and which findings lie
// there; this guard releases up to that point, less a trailing `[EMAIL_` that may be a placeholder
// cut in two (restored only once whole), applying each finding's action on the way. A block
// finding, or the engine's stream overflowing its cap (an unbounded secret such as a PEM block
// without its end line), is reported instead of text: the stage ends the stream.
import {
  type DlpFinding,
  DlpHoldOverflow,
  type DlpScanner,
  type DlpSession,
  type DlpStreamStep,
  type DlpTextStream,
} from './engine-port.ts';

export type GuardResult = { text: string; blocked?: undefined } | { text?: undefined; blocked: DlpFinding };

/** Called for each finding as it is decided; start/end are offsets in the channel's whole text. */
export type FindingSink = (f: DlpFinding) => void;

/** The finding type a block reports when the hold-back overflowed its cap. */
export const HOLD_CAP_TYPE = 'HOLD_LIMIT';
const OVERFLOW: DlpFinding = { type: HOLD_CAP_TYPE, start: 0, end: 0, dataClass: 'SECRET', action: 'block' };

export class StreamGuard {
  private readonly stream: DlpTextStream;
  /** Text not yet released; its first unit is at absolute offset `base`. */
  private held = '';
  private base = 0;
  /** Findings decided but not yet released (they lie in `held`). */
  private readonly queue: DlpFinding[] = [];

  private readonly session: DlpSession | undefined;
  private readonly sink: FindingSink;

  constructor(scanner: DlpScanner, session: DlpSession | undefined, sink: FindingSink) {
    this.stream = scanner.stream();
    this.session = session;
    this.sink = sink;
  }

  /** Units held back right now. */
  get holding(): number {
    return this.held.length;
  }

  push(delta: string): GuardResult {
    this.held += delta;
    let step: DlpStreamStep;
    try {
      step = this.stream.push(delta);
    } catch (err) {
      if (err instanceof DlpHoldOverflow) return { blocked: OVERFLOW };
      throw err;
    }
    for (const f of step.findings) this.queue.push(f);
    return this.releaseTo(step.decided, false);
  }

  /** The channel ended: decide and release everything held. */
  flush(): GuardResult {
    const step = this.stream.end();
    for (const f of step.findings) this.queue.push(f);
    return this.releaseTo(step.decided, true);
  }

  private releaseTo(decided: number, final: boolean): GuardResult {
    let limit = final ? this.base + this.held.length : decided;
    if (!final && this.session !== undefined && this.session.issued) {
      const tail = this.session.restoreHoldBack(this.held.slice(0, limit - this.base));
      limit -= tail;
    }
    const q = this.queue;
    // Never cut a finding in two: hold from its start instead.
    for (const f of q) if (f.start < limit && f.end > limit) limit = f.start;
    if (limit <= this.base) return { text: '' };
    let out = '';
    let at = this.base;
    let used = 0;
    for (; used < q.length; used++) {
      const f = q[used]!;
      if (f.end > limit) break;
      this.sink(f);
      if (f.action === 'block') return { blocked: f };
      if (f.action === 'warn') continue;
      out += this.restore(this.slice(at, f.start));
      const value = this.slice(f.start, f.end);
      out += this.session !== undefined ? this.session.replace(value, f) : `[REDACTED:${f.type}]`;
      at = f.end;
    }
    q.splice(0, used);
    out += this.restore(this.slice(at, limit));
    this.held = this.held.slice(limit - this.base);
    this.base = limit;
    return { text: out };
  }

  private slice(from: number, to: number): string {
    return this.held.slice(from - this.base, to - this.base);
  }

  private restore(s: string): string {
    return this.session?.issued && s.length > 0 ? this.session.restore(s) : s;
  }
}
