import { describe, expect, it } from 'vitest';
import { type HeapProfileNode, summarizeAlloc } from './alloc-profile.ts';

const node = (id: number, functionName: string, url: string, selfSize: number, children: HeapProfileNode[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber: 9 },
  selfSize,
  children,
});

describe('summarizeAlloc', () => {
  const head = node(1, '(root)', '', 0, [
    node(2, 'answer', 'file:///r/extproc/server/stream.js', 1000, [
      node(3, 'Struct$encode', '', 3000),
      node(4, 'write', 'file:///r/node_modules/@grpc/grpc-js/build/src/call.js', 2000),
    ]),
    node(5, 'onData', 'file:///r/extproc/server/stream.js', 0, [node(6, 'Struct$encode', '', 4000)]),
  ]);
  const s = summarizeAlloc({ head }, 10);

  it('divides every sampled byte by the requests', () => {
    expect(s.totalBytes).toBe(10_000);
    expect(s.bytesPerRequest).toBe(1000);
  });
  it('sums by package, generated codecs under protobufjs', () => {
    expect(s.byPackage).toEqual([
      { name: 'protobufjs', bytesPerRequest: 700, pct: 70 },
      { name: '@grpc/grpc-js', bytesPerRequest: 200, pct: 20 },
      { name: 'lm-gate extproc/server/stream.js', bytesPerRequest: 100, pct: 10 },
    ]);
  });
  it('names the top functions with the caller that accounts for most of their bytes', () => {
    expect(s.topFunctions[0]).toEqual({
      name: 'Struct$encode',
      location: '',
      bytesPerRequest: 700,
      pct: 70,
      calledFrom: 'onData extproc/server/stream.js:10',
    });
  });
});
