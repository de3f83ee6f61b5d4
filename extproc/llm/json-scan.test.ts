import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8, foldKey, type JsonError, type JsonMember, JsonScanner, scanJson } from './json-scan.ts';

const scan = (s: string | Buffer, opts = {}) => scanJson(Buffer.isBuffer(s) ? s : Buffer.from(s), opts);
const errorOf = (s: string | Buffer, opts = {}): JsonError | undefined => {
  const r = scan(s, opts);
  return r.ok ? undefined : r.error;
};

/** The outcome of a scan fed in the given chunks: error (or undefined), members, root type. */
function chunked(chunks: Buffer[], opts = {}) {
  const s = new JsonScanner({ collectMembers: true, ...opts });
  let error: JsonError | undefined;
  for (const c of chunks) {
    error = s.push(c);
    if (error !== undefined) break;
  }
  error ??= s.end();
  return {
    error,
    members: error === undefined ? s.members : [],
    rootType: error === undefined ? s.rootType : undefined,
  };
}
const whole = (b: Buffer, opts = {}) => chunked([b], opts);

describe('scanJson accepts exactly what JSON.parse accepts', () => {
  const texts = [
    '{}',
    '[]',
    '0',
    '-0',
    '1',
    '-1',
    '12.5',
    '1e5',
    '1E+5',
    '1e-5',
    '-0.0e0',
    '123456789012345678901234567890',
    '01',
    '1.',
    '.1',
    '+1',
    '1e',
    '1e+',
    '-',
    '0x1',
    'Infinity',
    'NaN',
    '-Infinity',
    'true',
    'false',
    'null',
    'tru',
    'nul',
    'True',
    'nulll',
    '""',
    '"abc"',
    '"\\"\\\\\\/\\b\\f\\n\\r\\t"',
    '"\\u00e9\\uD83D\\uDE00"',
    '"\\ud800"',
    '"\\u12"',
    '"\\u12g4"',
    '"\\x41"',
    '"\\U0041"',
    '"\\a"',
    '"tab\there"',
    '"nl\nhere"',
    '"nul\u0000"',
    '"del\u007f"',
    '"é中😀"',
    '"unterminated',
    "'single'",
    ' \t\r\n{ "a" : [ 1 , 2 ] } \t\r\n',
    '\f{}',
    '\v{}',
    '\u00a0{}',
    '{}\u00a0',
    '{"a":1,}',
    '[1,]',
    '[,1]',
    '[1 2]',
    '{"a" 1}',
    '{"a":}',
    '{a:1}',
    '{"a":1 "b":2}',
    '{,}',
    '[}',
    '{]',
    '{"a":[}]}',
    '[[[]]',
    '[]]',
    '{} {}',
    '{}x',
    '// c\n{}',
    '/* c */{}',
    '',
    ' ',
    '{"a":{"b":[true,false,null,{"c":-1.5e-3}]}}',
  ];
  for (const t of texts) {
    let want = true;
    try {
      JSON.parse(t);
    } catch {
      want = false;
    }
    it(`${JSON.stringify(t)} → ${want ? 'valid' : 'invalid'}`, () => {
      const r = scan(t);
      expect(r.ok).toBe(want);
      if (!r.ok) expect(r.error.code).toBe('invalid_json');
    });
  }

  it('agrees with JSON.parse on random mutations (seeded), whole and byte by byte', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    const atoms = [
      '0',
      '-1.5e3',
      'true',
      'false',
      'null',
      '""',
      '"a\\n\\u00e9"',
      '"é😀"',
      '[]',
      '{}',
      '12345678901234567890',
    ];
    const gen = (d: number): string => {
      const r = rnd(d > 3 ? 1 : 3);
      if (r === 0) return atoms[rnd(atoms.length)]!;
      const n = rnd(4);
      const items = Array.from({ length: n }, (_, i) => (r === 1 ? gen(d + 1) : `"k${i}":${gen(d + 1)}`));
      return r === 1 ? `[${items.join(',')}]` : `{ ${items.join(' , ')} }`;
    };
    const junk = [' ', ',', ':', '"', '\\', '{', '}', '[', ']', '0', '-', '.', 'e', 'x', '\n', '\u0001', 'é'];
    for (let k = 0; k < 3000; k++) {
      let t = gen(0);
      for (let m = rnd(3); m > 0; m--) {
        const p = rnd(t.length + 1);
        t = rnd(2) === 0 ? t.slice(0, p) + junk[rnd(junk.length)] + t.slice(p) : t.slice(0, p) + t.slice(p + 1);
      }
      let want = true;
      try {
        JSON.parse(t);
      } catch {
        want = false;
      }
      const b = Buffer.from(t);
      const r = whole(b);
      if (r.error?.code !== 'duplicate_key') expect(r.error === undefined, t).toBe(want);
      const bytes = chunked(Array.from(b, (_, i) => b.subarray(i, i + 1)));
      expect(bytes, t).toEqual(r);
    }
  });
});

describe('errors: code, path, offset', () => {
  const table: [string, string | Buffer, Partial<JsonError>, object?][] = [
    ['invalid_json in an array', '{"a":[1,2,}', { code: 'invalid_json', path: 'a[2]', offset: 10 }],
    ['invalid_json: missing colon', '{"model" "x"}', { code: 'invalid_json', path: 'model', offset: 9 }],
    ['invalid_json: bad escape', '{"m":["\\q"]}', { code: 'invalid_json', path: 'm[0]', offset: 8 }],
    ['invalid_json: control character', '{"m":"a\tb"}', { code: 'invalid_json', path: 'm', offset: 7 }],
    ['invalid_json: truncated', '{"a":{"b":[', { code: 'invalid_json', path: 'a.b[0]', offset: 11 }],
    ['invalid_json: trailing data', '{} 1', { code: 'invalid_json', path: '', offset: 3 }],
    ['json_too_deep', '{"a":[[[]]]}', { code: 'json_too_deep', path: 'a[0][0]', offset: 7 }, { maxDepth: 3 }],
    [
      'duplicate_key, nested',
      '{"messages":[{"role":"a"},{"role":"b","role":"c"}]}',
      { code: 'duplicate_key', path: 'messages[1].role', offset: 38 },
    ],
    ['ambiguous_key', '{"model":"a","MODEL":"b"}', { code: 'ambiguous_key', path: 'MODEL', offset: 13 }],
    ['invalid_utf8 in a value', Buffer.from('{"a":"\xff"}', 'latin1'), { code: 'invalid_utf8', path: 'a', offset: 6 }],
    [
      'invalid_utf8: overlong',
      Buffer.from([0x5b, 0x22, 0xc0, 0xaf, 0x22, 0x5d]),
      { code: 'invalid_utf8', path: '[0]', offset: 2 },
    ],
    [
      'invalid_utf8: encoded surrogate',
      Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]),
      { code: 'invalid_utf8', path: '', offset: 1 },
    ],
    [
      'invalid_utf8: truncated sequence at the end',
      Buffer.from([0x22, 0xe4, 0xb8]),
      { code: 'invalid_utf8', offset: 1 },
    ],
    [
      'invalid_utf8 outside a string is a syntax error',
      Buffer.from([0x5b, 0xff, 0x5d]),
      { code: 'invalid_json', offset: 1 },
    ],
    ['unpaired surrogate escape in a key', '{"x":{"\\ud800":1}}', { code: 'invalid_utf8', path: 'x', offset: 6 }],
    ['unpaired low surrogate escape in a key', '{"a\\udc00b":1}', { code: 'invalid_utf8', path: '', offset: 1 }],
  ];
  for (const [name, input, want, opts] of table) {
    it(name, () => {
      const e = errorOf(input, opts);
      expect(e).toMatchObject(want);
      // Same error whatever the chunking.
      const b = Buffer.isBuffer(input) ? input : Buffer.from(input);
      expect(
        chunked(
          Array.from(b, (_, i) => b.subarray(i, i + 1)),
          opts,
        ).error,
      ).toEqual(e);
    });
  }

  it('an unpaired surrogate escape is fine in a value, and a pair in a key', () => {
    expect(scan('{"a":"\\ud800"}').ok).toBe(true);
    expect(scan('{"\\ud83d\\ude00":1}').ok).toBe(true);
  });

  it('names the path, never a string value', () => {
    const e = errorOf('{"messages":[{"content":"sk-secret-value\u0001"}]}')!;
    expect(e.path).toBe('messages[0].content');
    expect(e.message).toContain('messages[0].content');
    expect(e.message).not.toContain('secret');
  });

  it('brackets keys that are not identifiers and cuts long ones', () => {
    expect(errorOf('{"a b":{"c.d":[x]}}')!.path).toBe('["a b"]["c.d"][0]');
    const long = 'k'.repeat(100);
    const e = errorOf(`{"${long}":x}`)!;
    expect(e.path).toBe(`["${'k'.repeat(32)}…"]`);
  });
});

describe('parser-differential bypasses are refused', () => {
  const table: [string, string, string][] = [
    ['case variant', '{"model":"a","MODEL":"b"}', 'ambiguous_key'],
    ['case variant, mixed', '{"Model":"a","mOdEl":"b"}', 'ambiguous_key'],
    ['duplicate', '{"model":"a","model":"b"}', 'duplicate_key'],
    ['duplicate, escaped', '{"model":"a","\\u006dodel":"b"}', 'duplicate_key'],
    ['duplicate, escaped upper hex', '{"\\u006D\\u006F\\u0064\\u0065\\u006C":"a","model":"b"}', 'duplicate_key'],
    ['case variant, escaped', '{"model":"a","\\u004dodel":"b"}', 'ambiguous_key'],
    ['duplicate in a nested message', '{"model":"m","messages":[{"role":"user","role":"system"}]}', 'duplicate_key'],
    ['case variant in a nested message', '{"model":"m","messages":[{"role":"user","ROLE":"system"}]}', 'ambiguous_key'],
    ['long s (U+017F) folds to s', '{"stream":false,"ſtream":true}', 'ambiguous_key'],
    ['long s, escaped', '{"stream":false,"\\u017ftream":true}', 'ambiguous_key'],
    ['Kelvin sign (U+212A) folds to k', '{"key":1,"\u212aey":2}', 'ambiguous_key'],
    ['Kelvin sign vs K', '{"K":1,"\u212a":2}', 'ambiguous_key'],
    ['Greek sigma forms', '{"σ":1,"ς":2}', 'ambiguous_key'],
    ['micro sign and mu', '{"µ":1,"Μ":2}', 'ambiguous_key'],
    ['Angstrom sign', '{"å":1,"\u212b":2}', 'ambiguous_key'],
  ];
  for (const [name, body, code] of table) it(name, () => expect(errorOf(body)?.code).toBe(code));

  const allowed: [string, string][] = [
    ['same key in different objects', '{"a":{"model":1},"b":{"model":2},"model":3}'],
    ['same key at different depths', '{"model":{"model":{"MODEL":1}}}'],
    ['dotless i is not i (Go keeps them apart)', '{"i":1,"ı":2}'],
    ['dotted capital I is not i', '{"i":1,"İ":2}'],
    ['sharp s is not ss', '{"ss":1,"ß":2}'],
    ['digits and punctuation', '{"a1":1,"a_1":2,"A-1":3}'],
  ];
  for (const [name, body] of allowed) it(`allows: ${name}`, () => expect(scan(body).ok).toBe(true));
});

describe('foldKey', () => {
  const equal: [string, string][] = [
    ['model', 'MODEL'],
    ['stream', 'ſtream'],
    ['key', '\u212aey'],
    ['K', '\u212a'],
    ['σσ', 'ΣΣ'],
    ['σ', 'ς'],
    ['θ', 'ϑ'],
    ['θ', 'ϴ'],
    ['ι', '\u0345'],
    ['ι', '\u1fbe'],
    ['т', '\u1c84'],
    ['ǆ', 'ǅ'],
    ['ß', 'ẞ'],
    ['Ꭰ', 'ꭰ'],
    ['𐐀', '𐐨'],
  ];
  for (const [a, b] of equal) it(`${a} ~ ${b}`, () => expect(foldKey(a)).toBe(foldKey(b)));
  const different: [string, string][] = [
    ['i', 'ı'],
    ['i', 'İ'],
    ['ss', 'ß'],
    ['a', 'á'],
    ['k', 'q'],
  ];
  for (const [a, b] of different) it(`${a} ≁ ${b}`, () => expect(foldKey(a)).not.toBe(foldKey(b)));
  it('returns ASCII keys without capitals unchanged', () => {
    const k = 'content';
    expect(foldKey(k)).toBe(k);
  });
});

describe('depth', () => {
  const arrays = (n: number): string => '['.repeat(n) + ']'.repeat(n);
  const objects = (n: number): string => `${'{"a":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}`;
  for (const limit of [1, 2, 64]) {
    it(`arrays: ${limit} accepted, ${limit + 1} refused`, () => {
      expect(scan(arrays(limit), { maxDepth: limit }).ok).toBe(true);
      expect(errorOf(arrays(limit + 1), { maxDepth: limit })?.code).toBe('json_too_deep');
    });
    it(`objects: ${limit} accepted, ${limit + 1} refused`, () => {
      expect(scan(objects(limit), { maxDepth: limit }).ok).toBe(true);
      expect(errorOf(objects(limit + 1), { maxDepth: limit })?.code).toBe('json_too_deep');
    });
  }

  it('refuses 20,000 deep without a RangeError, where it goes over the limit', () => {
    const e = errorOf(arrays(20_000), { maxDepth: 64 });
    expect(e).toMatchObject({ code: 'json_too_deep', offset: 64 });
  });

  it('scans 20,000 deep when allowed: nothing recurses', () => {
    expect(scan(arrays(20_000), { maxDepth: 20_000 }).ok).toBe(true);
    expect(scan(`{"model":"m","x":${arrays(20_000)}}`, { maxDepth: 20_001 }).ok).toBe(true);
  });
});

describe('BOM', () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const doc = Buffer.from('{"model":"m"}');
  const withBom = Buffer.concat([bom, doc]);

  it('is refused unless allowed', () => {
    expect(errorOf(withBom)).toMatchObject({ code: 'invalid_json', offset: 0 });
  });

  it('is skipped when allowed, offsets counting it', () => {
    const r = scan(withBom, { allowBom: true, collectMembers: true });
    expect(r).toMatchObject({ ok: true, bomLength: 3, rootStart: 3 });
    expect(r.ok && r.members).toEqual([{ key: 'model', type: 'string', start: 12, end: 15 }]);
    expect(scan(doc, { allowBom: true })).toMatchObject({ ok: true, bomLength: 0 });
  });

  it('is recognised across chunks', () => {
    for (let i = 1; i < withBom.length; i++) {
      const r = chunked([withBom.subarray(0, i), withBom.subarray(i)], { allowBom: true });
      expect(r.error).toBeUndefined();
      expect(r.members).toEqual([{ key: 'model', type: 'string', start: 12, end: 15 }]);
    }
  });

  it('a BOM alone or a partial one is no JSON text', () => {
    expect(errorOf(bom, { allowBom: true })?.code).toBe('invalid_json');
    expect(errorOf(Buffer.from([0xef, 0xbb, 0x7b, 0x7d]), { allowBom: true })?.code).toBe('invalid_utf8');
    expect(errorOf(Buffer.concat([bom, bom, doc]), { allowBom: true })?.code).toBe('invalid_json');
  });
});

describe('top-level members', () => {
  const body =
    ' {"model" : "llama\\u00e9", "stream":true, "n": -1.5e3, "stream_options":{"include_usage":false,"x":[1]},"messages":[{"role":"user"}],"z":null,"seed":12345678901234567890} ';
  const b = Buffer.from(body);

  it('reports each member: decoded key, type, value span', () => {
    const r = scan(b, { collectMembers: true });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.rootType).toBe('object');
    expect(r.rootStart).toBe(1);
    const got = r.members.map((m) => [m.key, m.type, b.toString('utf8', m.start, m.end)]);
    expect(got).toEqual([
      ['model', 'string', '"llama\\u00e9"'],
      ['stream', 'boolean', 'true'],
      ['n', 'number', '-1.5e3'],
      ['stream_options', 'object', '{"include_usage":false,"x":[1]}'],
      ['messages', 'array', '[{"role":"user"}]'],
      ['z', 'null', 'null'],
      ['seed', 'number', '12345678901234567890'],
    ]);
  });

  it('calls onMemberStart and onMember', () => {
    const events: string[] = [];
    const r = scanJson(Buffer.from('{"a":[1],"b":"x"}'), {
      onMemberStart: (key, type, start) => events.push(`start ${key} ${type} ${start}`),
      onMember: (key, type, start, end) => events.push(`end ${key} ${type} ${start}-${end}`),
    });
    expect(r.ok).toBe(true);
    expect(events).toEqual(['start a array 5', 'end a array 5-8', 'start b string 13', 'end b string 13-16']);
  });

  it('reports no members for a root that is not an object', () => {
    const r = scan('[{"a":1}]', { collectMembers: true });
    expect(r).toMatchObject({ ok: true, rootType: 'array', members: [] });
  });

  it('without key checks, decodes only top-level keys, up to maxKeyBytes', () => {
    const keys: (string | undefined)[] = [];
    const r = scanJson(Buffer.from(`{"a":{"a":1,"a":2},"${'k'.repeat(20)}":1,"a":3}`), {
      checkKeys: false,
      maxKeyBytes: 10,
      onMember: (key) => keys.push(key),
    });
    expect(r.ok).toBe(true);
    expect(keys).toEqual(['a', undefined, 'a']);
  });
});

describe('chunking', () => {
  const docs = [
    '{"model":"llama-3","messages":[{"role":"user","content":"h\\u00e9llo \\"w\\" 😀 中"}],"stream":true,"n":-12.5e+3,"t":[true,false,null],"stream_options":{"include_usage":true}}',
    '\uFEFF{"model":"m","x":{"\\u006dodel":1}}',
    '[1,-0,0.5,1e5,"a",{"k":[]}]',
    '12345',
    '{"model":"a","MODEL":"b"}',
    '{"a":{"b":{"c":[1,2,]}}}',
    '{"\\u017ftream":true,"stream":false}',
    '{"é":"\u00e9","ſ":1,"s":2}',
  ];
  for (const d of docs) {
    const b = Buffer.from(d);
    it(`every split point and byte by byte: ${d.slice(0, 40)}`, () => {
      const opts = { allowBom: true };
      const want = whole(b, opts);
      for (let i = 0; i <= b.length; i++) expect(chunked([b.subarray(0, i), b.subarray(i)], opts)).toEqual(want);
      expect(
        chunked(
          Array.from(b, (_, i) => b.subarray(i, i + 1)),
          opts,
        ),
      ).toEqual(want);
    });
  }

  it('invalid UTF-8 is reported at the same offset whatever the chunking', () => {
    const inputs = [
      Buffer.from([0x22, 0x61, 0xe4, 0xb8, 0x41, 0x22]),
      Buffer.from([0x22, 0xf0, 0x9f, 0x98, 0x22]),
      Buffer.from([0x22, 0xc3, 0xa9, 0x80, 0x22]),
      Buffer.from([0x7b, 0x22, 0xe4, 0xb8, 0xad, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      Buffer.from([0xef, 0xbf, 0x7b, 0x7d]),
    ];
    for (const b of inputs) {
      const want = whole(b, { allowBom: true }).error;
      expect(want).toBeDefined();
      for (let i = 0; i <= b.length; i++)
        expect(chunked([b.subarray(0, i), b.subarray(i)], { allowBom: true }).error).toEqual(want);
    }
  });

  it('keeps scanning after a chunk ends inside a key, escape or number', () => {
    const s = new JsonScanner({ collectMembers: true });
    for (const part of ['{"mo', 'del":"a\\', 'u00e9","n":12', '34', '5,"x":tr', 'ue}'])
      expect(s.push(Buffer.from(part))).toBeUndefined();
    expect(s.end()).toBeUndefined();
    expect(s.complete).toBe(true);
    expect(s.members.map((m: JsonMember) => [m.key, m.type, m.start, m.end])).toEqual([
      ['model', 'string', 9, 18],
      ['n', 'number', 23, 28],
      ['x', 'boolean', 33, 37],
    ]);
  });

  it('ignores input after an error, and after end()', () => {
    const s = new JsonScanner();
    const e = s.push(Buffer.from('{x'));
    expect(e?.code).toBe('invalid_json');
    expect(s.push(Buffer.from('}'))).toBe(e);
    expect(s.end()).toBe(e);
    expect(s.complete).toBe(false);
  });
});

describe('firstInvalidUtf8', () => {
  const table: [number[], number][] = [
    [[0x61, 0x62], -1],
    [[0xc3, 0xa9], -1],
    [[0x61, 0xc3], 1],
    [[0xe0, 0x80, 0x80], 0],
    [[0xf4, 0x90, 0x80, 0x80], 0],
    [[0xf0, 0x9f, 0x98, 0x80], -1],
    [[0x61, 0x80], 1],
    [[0xf5, 0x80, 0x80, 0x80], 0],
  ];
  for (const [bytes, want] of table)
    it(Buffer.from(bytes).toString('hex'), () =>
      expect(firstInvalidUtf8(new Uint8Array(bytes), 0, bytes.length)).toBe(want),
    );
});

describe('scanners borrow per-depth arrays from finished ones', () => {
  it('interleaved scanners and documents of changing depth never see each other state', () => {
    const deep = (n: number) => `{"a":${'['.repeat(n)}1${']'.repeat(n)}}`;
    // R stays open across chunks while others start, finish and hand their arrays on.
    const r = new JsonScanner({ maxDepth: 200, collectMembers: true });
    expect(r.push(Buffer.from('{"x":[[[{"k":'))).toBeUndefined();
    for (const n of [3, 120, 1, 199, 64, 65, 2]) {
      const doc = Buffer.from(deep(n));
      const s = new JsonScanner({ maxDepth: 200, collectMembers: true });
      expect(s.push(doc)).toBeUndefined();
      expect(s.end()).toBeUndefined();
      expect(s.members.map((m) => [m.key, m.type, m.end - m.start])).toEqual([['a', 'array', doc.length - 6]]);
      // One over the limit still fails with the right path after a deeper document finished.
      const over = new JsonScanner({ maxDepth: 10 });
      over.push(Buffer.from(deep(10)));
      expect(over.end()?.code).toBe('json_too_deep');
    }
    expect(r.push(Buffer.from('[1,{"y":2}]}]]],"z":true}'))).toBeUndefined();
    expect(r.end()).toBeUndefined();
    expect(r.members.map((m) => m.key)).toEqual(['x', 'z']);
  });
});
