// Summarises a V8 sampling heap profile (bench/lib/alloc-sampler.ts) into bytes allocated per
// request: by package (grpc-js, protobufjs, our modules by file, Node internals) and by the
// functions that allocate most, each with its caller. Allocation drives the young-generation
// scavenges that set the gate's p99 at low rates (README Performance), so this is where to cut.
import { packageOf } from './cpu-profile.ts';

export interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  id: number;
  children: HeapProfileNode[];
}
export interface HeapProfile {
  head: HeapProfileNode;
}

export interface AllocSummary {
  totalBytes: number;
  bytesPerRequest: number;
  byPackage: { name: string; bytesPerRequest: number; pct: number }[];
  topFunctions: { name: string; location: string; bytesPerRequest: number; pct: number; calledFrom: string }[];
}

const frameName = (n: HeapProfileNode) => n.callFrame.functionName || '(anonymous)';
const location = (n: HeapProfileNode) => {
  const url = n.callFrame.url.replace(/^.*\/(node_modules\/|extproc\/|bench\/)/, '$1');
  return url ? `${url}:${n.callFrame.lineNumber + 1}` : '';
};

export function summarizeAlloc(profile: HeapProfile, requests: number, top = 15): AllocSummary {
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, { bytes: number; callers: Map<string, number>; location: string; name: string }>();
  let total = 0;
  const walk = (n: HeapProfileNode, parent: HeapProfileNode | undefined) => {
    if (n.selfSize > 0) {
      total += n.selfSize;
      const pkg = packageOf(n.callFrame.url, n.callFrame.functionName);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + n.selfSize);
      const key = `${frameName(n)} ${location(n)}`;
      let f = byFunction.get(key);
      if (!f) {
        f = { bytes: 0, callers: new Map(), location: location(n), name: frameName(n) };
        byFunction.set(key, f);
      }
      f.bytes += n.selfSize;
      const caller = parent ? `${frameName(parent)} ${location(parent)}`.trim() : '(root)';
      f.callers.set(caller, (f.callers.get(caller) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, n);
  };
  walk(profile.head, undefined);
  const per = (b: number) => Math.round(b / Math.max(1, requests));
  const pct = (b: number) => Math.round((b / Math.max(1, total)) * 1000) / 10;
  return {
    totalBytes: total,
    bytesPerRequest: per(total),
    byPackage: [...byPackage]
      .sort((a, b) => b[1] - a[1])
      .map(([name, b]) => ({ name, bytesPerRequest: per(b), pct: pct(b) })),
    topFunctions: [...byFunction.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, top)
      .map((f) => ({
        name: f.name,
        location: f.location,
        bytesPerRequest: per(f.bytes),
        pct: pct(f.bytes),
        calledFrom: [...f.callers].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
      })),
  };
}
