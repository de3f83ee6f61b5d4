// The metric names a PromQL expression reads, so dashboards and alert rules can be checked against
// what the gate exports. A small scanner, not a parser: it drops what cannot be a metric name
// (string literals, label matchers in braces, ranges in brackets, the label lists of by/without/
// on/ignoring/group_left/group_right, Grafana's $variables), then every identifier left that is
// not a function call, keyword or number is a metric name. Histogram series (_bucket, _sum,
// _count) are reported under their family's name, as /metrics's # TYPE lines name them.

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

export function promqlMetricNames(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const id = m[0];
    const after = s.slice((m.index ?? 0) + id.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(id.toLowerCase())) continue;
    // Exponents of numbers (1e-9) are not names.
    if (/^e\d*$/i.test(id) && /\d$/.test(s.slice(0, m.index).trimEnd())) continue;
    names.add(id);
  }
  return [...names];
}

/** The family a series belongs to: histogram and summary series share their family's name. */
export function familyOf(name: string, families: ReadonlySet<string>): string {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && families.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return name;
}

/** Metric families in a Prometheus text exposition (its # TYPE lines). */
export function exportedFamilies(metricsText: string): Set<string> {
  const out = new Set<string>();
  for (const m of metricsText.matchAll(/^# TYPE (\S+) \S+$/gm)) out.add(m[1] as string);
  return out;
}
