import { describe, expect, it } from 'vitest';
import { type CpuProfile, packageOf, summarize } from './cpu-profile.ts';

describe('packageOf', () => {
  const table: [string, string, string][] = [
    ['file:///r/node_modules/@grpc/grpc-js/build/src/server.js', 'f', '@grpc/grpc-js'],
    ['file:///r/node_modules/protobufjs/src/reader.js', 'f', 'protobufjs'],
    ['file:///r/extproc/server/stream.ts', 'f', 'lm-gate extproc/server/stream.ts'],
    ['node:internal/http2/core', 'f', 'node:internal/http2'],
    ['node:events', 'f', 'node:events'],
    ['', '(garbage collector)', 'V8 garbage collector'],
    ['', '(idle)', '(idle)'],
    ['', 'Struct$encode', 'protobufjs'],
    ['', 'HeaderValue$decode', 'protobufjs'],
  ];
  for (const [url, fn, want] of table) it(`${url || fn} → ${want}`, () => expect(packageOf(url, fn)).toBe(want));
});

describe('summarize', () => {
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4] },
      { id: 2, callFrame: frame('(idle)', '') },
      { id: 3, callFrame: frame('write', 'file:///r/node_modules/@grpc/grpc-js/build/src/x.js') },
      { id: 4, callFrame: frame('handle', 'file:///r/extproc/server/stream.ts') },
    ],
    samples: [2, 3, 3, 4, 2],
    timeDeltas: [1000, 3000, 3000, 2000, 9000],
  };
  it('leaves idle time out and splits busy time by package and function', () => {
    const s = summarize(profile);
    expect(s.sampledMs).toBe(8);
    expect(s.byPackage).toEqual([
      { name: '@grpc/grpc-js', selfPct: 75 },
      { name: 'lm-gate extproc/server/stream.ts', selfPct: 25 },
    ]);
    expect(s.topFunctions[0]).toEqual({
      name: 'write',
      location: '@grpc/grpc-js/build/src/x.js:1',
      selfPct: 75,
      calledFrom: '',
    });
  });

  it('keeps only the last lastMs of the profile', () => {
    const timed = { ...profile, startTime: 0, endTime: 18_000 };
    // Samples end at 1, 4, 7, 9, 18 ms: the last 12 ms hold the samples at 7, 9 and 18 ms.
    const s = summarize(timed, { lastMs: 12 });
    expect(s.sampledMs).toBe(5);
    expect(s.byPackage.map((p) => p.name)).toEqual(['@grpc/grpc-js', 'lm-gate extproc/server/stream.ts']);
  });
});
