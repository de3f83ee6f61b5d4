// lm-gate report: showback over the audit log. Totals of requests, tokens and cost per group
// (tenant, team, model, a metering label…) for a time window, as a table, CSV or JSON.
//
//   lm-gate report --from 2026-11-01 --to 2026-12-01 --by tenant,team,model [--format table|csv|json] FILE…
//
// The JSONL files are read by DuckDB directly (no copy into memory first). Lines that are not
// request records (a checkpoint or other record with a `type` other than "request", a line that
// is not JSON) are skipped. Cost is summed per currency, never across currencies: the currency
// is always a column. The window is [from, to): --from inclusive, --to exclusive, compared with
// each record's `time`.
import { stat } from 'node:fs/promises';
import { CommandError, parseCommandArgs, UsageError } from './usage.ts';

export const REPORT_USAGE = 'lm-gate report --from TIME --to TIME [--by DIMS] [--format table|csv|json] FILE…';
const CMD = 'lm-gate report';

/** Group-by dimensions and the SQL expression each reads from a record. */
const DIMENSIONS: Readonly<Record<string, string>> = {
  tenant: "principal->>'tenant'",
  team: "principal->>'team'",
  user: "principal->>'user'",
  key: "principal->>'key_id'",
  model: "coalesce(upstream_model, gen_ai->'request'->>'model')",
  route: 'route',
  api: "endpoint->>'api'",
  outcome: 'outcome',
  source: "metering->>'source'",
  day: "strftime(CAST(\"time\" AS TIMESTAMPTZ) AT TIME ZONE 'UTC', '%Y-%m-%d')",
};
const LABEL = /^label\.([a-z][a-z0-9_]{0,31})$/;

export interface ReportArgs {
  from: string;
  to: string;
  by: string[];
  format: 'table' | 'csv' | 'json';
  files: string[];
}

export interface ReportRow {
  [dimension: string]: string | number | null;
}

/** The command line as ReportArgs; UsageError (exit 2) for anything else. */
export function parseReportArgs(args: string[]): ReportArgs | 'help' {
  const { values, positionals } = parseCommandArgs(CMD, REPORT_USAGE, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      from: { type: 'string' },
      to: { type: 'string' },
      by: { type: 'string', default: 'tenant' },
      format: { type: 'string', default: 'table' },
    },
  });
  if (values.help) return 'help';
  const usage = (problem: string) => new UsageError(CMD, problem, REPORT_USAGE);
  if (values.from === undefined || values.to === undefined) throw usage('--from and --to are required');
  for (const t of [values.from, values.to])
    if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(t))
      throw usage(`"${t}" is not a date or an ISO 8601 time`);
  const by = values.by === '' ? [] : values.by.split(',').map((d) => d.trim());
  for (const d of by)
    if (!(d in DIMENSIONS) && !LABEL.test(d))
      throw usage(`unknown dimension "${d}"; one of ${Object.keys(DIMENSIONS).join(', ')}, label.NAME`);
  if (new Set(by).size !== by.length) throw usage('a dimension is listed twice');
  const format = values.format;
  if (format !== 'table' && format !== 'csv' && format !== 'json') throw usage('--format is table, csv or json');
  if (positionals.length === 0) throw usage('at least one audit FILE is required');
  return { from: values.from, to: values.to, by, format, files: positionals };
}

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The time as DuckDB reads it: a bare date is midnight UTC. */
const instant = (t: string) => (/^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : t);

function dimensionSql(d: string): string {
  const label = LABEL.exec(d);
  return label ? `metering->'labels'->>'${label[1]}'` : DIMENSIONS[d]!;
}

/** The report's SQL over the files. Every value that comes from the command line is either
 * checked against a closed set (dimensions), a pattern (times, label names) or quoted (paths). */
export function reportSql(a: Pick<ReportArgs, 'from' | 'to' | 'by' | 'files'>): string {
  const files = `[${a.files.map(sqlString).join(', ')}]`;
  const dims = a.by.map((d, i) => `${dimensionSql(d)} AS d${i}`);
  const groups = [...a.by.map((_, i) => `d${i}`), 'currency'];
  return `
WITH records AS (
  SELECT * FROM read_json(${files},
    format = 'newline_delimited',
    ignore_errors = true,
    columns = {
      "type": 'VARCHAR', schema_version: 'INTEGER', "time": 'VARCHAR', request_id: 'VARCHAR',
      principal: 'JSON', endpoint: 'JSON', gen_ai: 'JSON', upstream_model: 'VARCHAR',
      route: 'VARCHAR', outcome: 'VARCHAR', metering: 'JSON'
    })
  WHERE request_id IS NOT NULL AND schema_version IS NOT NULL AND coalesce("type", 'request') = 'request'
    AND TRY_CAST("time" AS TIMESTAMPTZ) >= CAST(${sqlString(instant(a.from))} AS TIMESTAMPTZ)
    AND TRY_CAST("time" AS TIMESTAMPTZ) < CAST(${sqlString(instant(a.to))} AS TIMESTAMPTZ)
), facts AS (
  SELECT ${[...dims, ''].join(', ')}
    CAST(gen_ai->'usage'->>'input_tokens' AS BIGINT) AS input_tokens,
    CAST(gen_ai->'usage'->>'output_tokens' AS BIGINT) AS output_tokens,
    CAST(metering->'cost'->>'amount' AS DOUBLE) AS cost,
    metering->'cost'->>'currency' AS currency
  FROM records
)
SELECT ${groups.join(', ')},
  count(*) AS requests,
  coalesce(sum(input_tokens), 0) AS input_tokens,
  coalesce(sum(output_tokens), 0) AS output_tokens,
  coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS total_tokens,
  sum(cost) AS cost
FROM facts
GROUP BY ${groups.join(', ')}
ORDER BY cost DESC NULLS LAST, ${groups.map((g) => `${g} NULLS LAST`).join(', ')}`;
}

/** Runs the report; `onProgress` is called with DuckDB's percentage every `progressEveryMs`
 * while it reads. */
export async function runReport(
  a: Pick<ReportArgs, 'from' | 'to' | 'by' | 'files'>,
  onProgress?: (percent: number) => void,
  progressEveryMs = 200,
): Promise<ReportRow[]> {
  // Loaded here, not at startup: `lm-gate serve` never pays for DuckDB's native library.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  // DuckDB tracks a query's progress only with its progress bar on (conn.progress reads -1
  // otherwise); its own printing stays off, since it would write the bar into stdout, which
  // carries the CSV or JSON.
  if (onProgress !== undefined) await conn.run('SET enable_progress_bar = true; SET enable_progress_bar_print = false');
  const timer =
    onProgress === undefined
      ? undefined
      : setInterval(() => {
          const p = conn.progress.percentage;
          if (p >= 0) onProgress(p);
        }, progressEveryMs);
  try {
    const reader = await conn.runAndReadAll(reportSql(a));
    const rows = reader.getRowObjectsJson();
    return rows.map((r) => {
      const out: ReportRow = {};
      a.by.forEach((d, i) => {
        out[d] = (r[`d${i}`] as string | null) ?? null;
      });
      out.currency = (r.currency as string | null) ?? null;
      for (const m of ['requests', 'input_tokens', 'output_tokens', 'total_tokens'])
        out[m] = Number(r[m] as string | number);
      out.cost = r.cost === null ? null : Number(r.cost as number);
      return out;
    });
  } finally {
    if (timer !== undefined) clearInterval(timer);
    conn.closeSync();
    instance.closeSync();
  }
}

function csvCell(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function formatReport(rows: ReportRow[], columns: string[], format: ReportArgs['format']): string {
  if (format === 'json') return `${JSON.stringify(rows, null, 2)}\n`;
  if (format === 'csv')
    return `${[columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c] ?? null)).join(','))].join('\n')}\n`;
  const cell = (v: string | number | null, c: string) =>
    v === null ? '-' : c === 'cost' && typeof v === 'number' ? v.toFixed(6) : String(v);
  const cells = rows.map((r) => columns.map((c) => cell(r[c] ?? null, c)));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const numeric = new Set(['requests', 'input_tokens', 'output_tokens', 'total_tokens', 'cost']);
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (numeric.has(columns[i]!) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')}\n`;
}

/** Logs this large get a progress bar on a terminal. */
const PROGRESS_MIN_BYTES = 64 * 1024 * 1024;

export async function reportCommand(args: string[]): Promise<number> {
  const a = parseReportArgs(args);
  if (a === 'help') {
    console.log(`usage: ${REPORT_USAGE}`);
    return 0;
  }
  let bytes = 0;
  for (const f of a.files) {
    try {
      bytes += (await stat(f)).size;
    } catch {
      throw new CommandError(`${CMD}: cannot read ${f}`);
    }
  }
  const bar = process.stderr.isTTY && bytes >= PROGRESS_MIN_BYTES;
  const draw = (p: number) => {
    const width = 30;
    const done = Math.round((Math.min(100, p) / 100) * width);
    process.stderr.write(`\r[${'#'.repeat(done)}${' '.repeat(width - done)}] ${p.toFixed(0)}%`);
  };
  let rows: ReportRow[];
  try {
    rows = await runReport(a, bar ? draw : undefined);
  } catch (err) {
    throw new CommandError(`${CMD}: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    if (bar) process.stderr.write('\r\x1b[K');
  }
  const columns = [...a.by, 'currency', 'requests', 'input_tokens', 'output_tokens', 'total_tokens', 'cost'];
  process.stdout.write(formatReport(rows, columns, a.format));
  return 0;
}
