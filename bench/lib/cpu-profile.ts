// Summarises a V8 .cpuprofile (node --cpu-prof) into where the gate's busy time goes: self time
// by package (grpc-js, protobufjs, our own modules by file, Node internals by area) and the
// hottest functions. Idle time is left out, so percentages are of time the gate was busy.

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** Microseconds. */
  startTime?: number;
  endTime?: number;
}

export interface ProfileSummary {
  sampledMs: number;
  byPackage: { name: string; selfPct: number }[];
  /** With the caller that accounts for most of each function's self time: "who pays". */
  topFunctions: { name: string; location: string; selfPct: number; calledFrom: string }[];
}

/** Which part of the stack a frame belongs to. */
export function packageOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'V8 garbage collector';
    if (functionName === '(program)') return 'native (outside JavaScript)';
    if (functionName === '(idle)') return '(idle)';
    // protobufjs generates a codec per message type with new Function: no script URL.
    if (/^\w+\$(encode|decode|verify|fromObject|toObject)$/.test(functionName)) return 'protobufjs';
    return 'native';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1]!;
  const own = /\/(extproc\/.+)$/.exec(url);
  if (own) return `lm-gate ${own[1]}`;
  const internal = /^node:(internal\/[^/]+|[^/]+)/.exec(url);
  if (internal) return `node:${internal[1]!.replace(/\.js$/, '')}`;
  return url;
}

/** `lastMs`: only the samples of the profile's last lastMs milliseconds (the load window, not
 * the process's start-up). */
export function summarize(profile: CpuProfile, opts: { top?: number; lastMs?: number } = {}): ProfileSummary {
  const top = opts.top ?? 15;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let t = profile.startTime ?? 0;
  const from =
    opts.lastMs !== undefined && profile.endTime !== undefined ? profile.endTime - opts.lastMs * 1000 : -Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < from) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const pkg = new Map<string, number>();
  const fn = new Map<string, { name: string; location: string; us: number; callers: Map<string, number> }>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const p = packageOf(url, functionName);
    if (p === '(idle)') continue;
    busy += us;
    pkg.set(p, (pkg.get(p) ?? 0) + us);
    const location = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${location}`;
    const f = fn.get(key) ?? { name: functionName || '(anonymous)', location, us: 0, callers: new Map() };
    f.us += us;
    const caller = callerOf(id, byId, parent);
    f.callers.set(caller, (f.callers.get(caller) ?? 0) + us);
    fn.set(key, f);
  }
  const pct = (us: number) => (busy > 0 ? Math.round((us / busy) * 1000) / 10 : 0);
  return {
    sampledMs: Math.round(busy / 1000),
    byPackage: [...pkg]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, selfPct: pct(us) }))
      .filter((p) => p.selfPct >= 0.5),
    topFunctions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({
        name: f.name,
        location: f.location,
        selfPct: pct(f.us),
        calledFrom: [...f.callers].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
      })),
  };
}

/** The nearest caller frame that is not the function itself (recursion) or anonymous glue. */
function callerOf(id: number, byId: Map<number, ProfileNode>, parent: Map<number, number>): string {
  const self = byId.get(id)!.callFrame;
  let p = parent.get(id);
  while (p !== undefined) {
    const f = byId.get(p)!.callFrame;
    if (f.functionName === '(root)') return '';
    if (f.functionName && !(f.functionName === self.functionName && f.url === self.url))
      return `${f.functionName} (${f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : 'native'})`;
    p = parent.get(p);
  }
  return '';
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const own = url.indexOf('/extproc/');
  if (own >= 0) return url.slice(own + 1);
  return url.replace(/^file:\/\//, '');
}
