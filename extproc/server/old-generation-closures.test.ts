// V8's parser marks a function literal assigned straight to a `this` property
// (`this.onDone = () => …`) to be allocated in the old generation, expecting it to live as long
// as its object. For a per-request object that is the wrong guess: the closure dies with the
// request but only a mark-compact can tell, and until then, from the old generation, its
// context keeps everything it captured (the request's state) through every scavenge.
// `bench:alloc --nvp --audit strict` at 300 req/s measured 5.19 KiB promoted per request with
// the strict-durability answer held in such a closure, 1.23 once it went through a local. Node
// 24's own WritableState does the same to every stream (README Performance). So the gate's
// sources keep to the forms V8 allocates young: a local, then the assignment, or a class
// field initialiser.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** A function literal assigned straight to a property of `this` (the form V8 pretenures). */
const THIS_PROPERTY_FUNCTION =
  /\bthis\.[\w$#]+\s*=\s*(?:async\s+)?(?:function\b|(?:\([^()]*\)|[\w$]+)\s*(?::\s*[^=;]+?)?\s*=>)/;

describe('function literals assigned to this-properties', () => {
  it.each([
    ['this.afterRecord = () => this.answer(message);', true],
    ['this.afterRecord = (): void => this.answer(message);', true],
    ['this.onwrite = (er) => onwrite(stream, er);', true],
    ['this.handler = async (req) => { await x(req); };', true],
    ['this.cb = err => done(err);', true],
    ['this.fn = function (a) { return a; };', true],
    ['this.#private = () => 1;', true],
    ['const after = (): void => this.answer(message); this.afterRecord = after;', false],
    ['this.onwrite = onwrite.bind(undefined, stream);', false],
    ['private readonly onData = (chunk: Buffer): void => {', false],
    ['this.count = (a + b) * 2;', false],
    ['this.done = this.ctx === undefined;', false],
  ])('%s → %s', (line, flagged) => {
    expect(THIS_PROPERTY_FUNCTION.test(line)).toBe(flagged);
  });

  it('none in the gate: each would keep a request alive until a mark-compact', () => {
    const root = join(import.meta.dirname, '..');
    const found: string[] = [];
    for (const file of readdirSync(root, { recursive: true }) as string[]) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      const lines = readFileSync(join(root, file), 'utf8').split('\n');
      lines.forEach((line, i) => {
        const code = line.trim();
        // Comments may name the form (this one's reason is written at each place it was avoided).
        if (code.startsWith('//') || code.startsWith('*') || code.startsWith('/*')) return;
        if (THIS_PROPERTY_FUNCTION.test(code)) found.push(`extproc/${file}:${i + 1}: ${code}`);
      });
    }
    expect(found).toEqual([]);
  });
});
