// lm-gate audit query: select audit records with DuckDB reading the JSONL files directly (no
// import step, no index to keep): rotated files, live file and all, in one SQL query. The
// columns are declared, not guessed from a sample, so a line of another shape (a checkpoint, a
// newer field) cannot change a column's type; unknown fields are ignored.
//
//   lm-gate audit query --tenant acme --route hipaa --dlp phi --since 2026-10-01 --until 2026-11-01 audit.log*
//
// Capture files (audit.capture) may be among FILES: their lines are not records, so filters never
// select them; --with-capture adds each record's captured prompt and response (joined on
// request_id; `audit verify` is what proves them unchanged).
//
// refusal_summary lines (requests the audit sink refused while it could not write, counted
// instead of recorded one by one: sink.ts) are not records, so they are never rows; when the
// period asked holds some, a note on stderr says how many refusals they count.
import { parseDuration } from './durations.ts';
import { parseCommandArgs, UsageError } from './usage.ts';

export const AUDIT_QUERY_USAGE =
  'lm-gate audit query [--since T] [--until T] [--tenant X] [--team X] [--user X] [--model X] [--route X] [--rule ID] [--effect allow|deny] [--outcome X] [--dlp TYPE|CLASS] [--captured] [--with-capture] [--limit N] [--format table|json|csv] FILES…';
const CMD = 'lm-gate audit query';

/** The record fields a query reads, typed (docs/audit-record.schema.json has them all). */
const COLUMNS = {
  type: 'VARCHAR',
  time: 'TIMESTAMPTZ',
  request_id: 'VARCHAR',
  principal: 'STRUCT(id VARCHAR, tenant VARCHAR, team VARCHAR, "user" VARCHAR, method VARCHAR)',
  gen_ai: 'STRUCT(request STRUCT(model VARCHAR), response STRUCT(model VARCHAR))',
  upstream_model: 'VARCHAR',
  route: 'VARCHAR',
  status: 'INTEGER',
  outcome: 'VARCHAR',
  error: 'STRUCT(code VARCHAR, rule_id VARCHAR)',
  decisions: 'STRUCT(stage VARCHAR, rule_id VARCHAR, effect VARCHAR)[]',
  dlp: 'STRUCT(findings STRUCT(type VARCHAR)[], data_classes VARCHAR[])',
  capture: 'STRUCT(sha256 VARCHAR, rule VARCHAR)',
  // Capture lines' texts (type "capture"): read only with --with-capture.
  prompt: 'STRUCT(role VARCHAR, "text" VARCHAR)[]',
  response: 'STRUCT(choice INTEGER, "text" VARCHAR)[]',
  // refusal_summary lines: how many refusals, over which request times.
  refused: 'BIGINT',
  first_time: 'TIMESTAMPTZ',
  last_time: 'TIMESTAMPTZ',
} as const;

/** --with-capture: the texts of the record's capture line, one "role: text" per prompt part and
 * one text per response choice, each on its own line. */
const CAPTURE_SELECT = `,
  array_to_string(list_transform(c_prompt, p -> p.role || ': ' || p."text"), chr(10)) AS prompt,
  array_to_string(list_transform(c_response, p -> p."text"), chr(10)) AS response`;

const SELECT = `
  strftime(time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ') AS time,
  request_id,
  principal.tenant AS tenant,
  principal.team AS team,
  principal."user" AS "user",
  gen_ai.request.model AS model,
  route,
  status,
  outcome,
  coalesce(error.rule_id, error.code) AS refused_by,
  nullif(array_to_string(list_distinct(list_concat(
    coalesce(list_transform(dlp.findings, f -> f.type), []),
    coalesce(dlp.data_classes, []))), ' '), '') AS dlp`;

/** A filter flag: its SQL condition over parameter `$n`. */
const FILTERS: Record<string, (p: string) => string> = {
  tenant: (p) => `principal.tenant = ${p}`,
  team: (p) => `principal.team = ${p}`,
  user: (p) => `principal."user" = ${p}`,
  model: (p) => `(gen_ai.request.model = ${p} OR upstream_model = ${p} OR gen_ai.response.model = ${p})`,
  route: (p) => `route = ${p}`,
  outcome: (p) => `outcome = ${p}`,
  rule: (p) => `(error.rule_id = ${p} OR list_contains(list_transform(decisions, d -> d.rule_id), ${p}))`,
  effect: (p) => `list_contains(list_transform(decisions, d -> lower(d.effect)), lower(${p}))`,
  dlp: (p) =>
    `(list_contains(list_transform(dlp.findings, f -> lower(f.type)), lower(${p})) OR list_contains(list_transform(dlp.data_classes, c -> lower(c)), lower(${p})))`,
};

const FORMATS = ['table', 'json', 'csv'] as const;

/** A --since/--until value: an RFC 3339 date or date-time, or a duration ago (30d). */
function parseTime(flag: string, text: string, now: number): string {
  const ago = parseDuration(text);
  if (ago !== undefined) return new Date(now - ago).toISOString();
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(ms))
    throw new UsageError(
      CMD,
      `--${flag} "${text}" is neither a date (2026-10-01), a date-time nor a duration ago (30d)`,
    );
  return new Date(ms).toISOString();
}

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

export interface AuditQuery {
  sql: string;
  params: string[];
  /** Refusals counted in refusal_summary lines over the period asked (one row, one column). */
  summarySql: string;
  summaryParams: string[];
  format: (typeof FORMATS)[number];
}

export function buildAuditQuery(args: string[], now = Date.now()): AuditQuery | 'help' {
  const filterOptions = Object.fromEntries(Object.keys(FILTERS).map((k) => [k, { type: 'string' as const }]));
  const { values, positionals } = parseCommandArgs(CMD, AUDIT_QUERY_USAGE, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      format: { type: 'string', short: 'f' },
      captured: { type: 'boolean' },
      'with-capture': { type: 'boolean' },
      ...filterOptions,
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help) return 'help';
  if (positionals.length === 0) throw new UsageError(CMD, 'FILES are required', AUDIT_QUERY_USAGE);
  const format = (v.format ?? 'table') as AuditQuery['format'];
  if (!FORMATS.includes(format)) throw new UsageError(CMD, `--format is one of ${FORMATS.join(', ')}`);
  const where = [`type = 'request'`];
  const params: string[] = [];
  const param = (value: string) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (typeof v.since === 'string') where.push(`time >= ${param(parseTime('since', v.since, now))}::TIMESTAMPTZ`);
  if (typeof v.until === 'string') where.push(`time < ${param(parseTime('until', v.until, now))}::TIMESTAMPTZ`);
  for (const [flag, condition] of Object.entries(FILTERS)) {
    const value = v[flag];
    if (typeof value === 'string') where.push(condition(param(value)));
  }
  if (v.captured === true) where.push('capture IS NOT NULL');
  // A summary overlaps the period when its refusals' first and last times straddle it.
  const summaryWhere = [`type = 'refusal_summary'`];
  const summaryParams: string[] = [];
  if (typeof v.since === 'string') {
    summaryParams.push(parseTime('since', v.since, now));
    summaryWhere.push(`last_time >= $${summaryParams.length}::TIMESTAMPTZ`);
  }
  if (typeof v.until === 'string') {
    summaryParams.push(parseTime('until', v.until, now));
    summaryWhere.push(`first_time < $${summaryParams.length}::TIMESTAMPTZ`);
  }
  let limit = '';
  if (typeof v.limit === 'string') {
    if (!/^\d{1,9}$/.test(v.limit)) throw new UsageError(CMD, '--limit is a whole number');
    limit = ` LIMIT ${Number(v.limit)}`;
  }
  const columns = `{${Object.entries(COLUMNS)
    .map(([k, t]) => `${k}: ${sqlString(t)}`)
    .join(', ')}}`;
  const files = `[${positionals.map(sqlString).join(', ')}]`;
  const read = `read_json(${files}, format = 'newline_delimited', columns = ${columns}, maximum_object_size = 16777216)`;
  const sql =
    v['with-capture'] === true
      ? `WITH lines AS (SELECT * FROM ${read}),
records AS (SELECT * FROM lines WHERE ${where.join('\n  AND ')}),
captures AS (SELECT request_id AS c_id, prompt AS c_prompt, response AS c_response FROM lines WHERE type = 'capture')
SELECT ${SELECT}${CAPTURE_SELECT}
FROM records LEFT JOIN captures ON c_id = request_id
ORDER BY time, request_id${limit}`
      : `SELECT ${SELECT}
FROM ${read}
WHERE ${where.join('\n  AND ')}
ORDER BY time, request_id${limit}`;
  const summarySql = `SELECT coalesce(sum(refused), 0)::VARCHAR AS refused FROM ${read}
WHERE ${summaryWhere.join(' AND ')}`;
  return { sql, params, format, summarySql, summaryParams };
}

export async function auditQuery(args: string[]): Promise<number> {
  const q = buildAuditQuery(args);
  if (q === 'help') {
    console.log(`usage: ${AUDIT_QUERY_USAGE}`);
    return 0;
  }
  // Loaded here, not with the CLI: its native library costs every other command ~0.5 s to start.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const connection = await instance.connect();
    const reader = await connection.runAndReadAll(q.sql, q.params);
    const names = reader.columnNames();
    const rows = reader.getRowsJson().map((r) => r.map((c) => (c === null ? null : String(c))));
    process.stdout.write(render(q.format, names, rows));
    const summarised = Number((await connection.runAndReadAll(q.summarySql, q.summaryParams)).getRowsJson()[0]?.[0]);
    if (summarised > 0)
      process.stderr.write(
        `note: ${summarised} refused request(s) (503 audit_unavailable) in this period are counted in refusal_summary lines, not listed one by one (docs/audit.md)\n`,
      );
    connection.closeSync();
  } finally {
    instance.closeSync();
  }
  return 0;
}

function render(format: AuditQuery['format'], names: string[], rows: (string | null)[][]): string {
  switch (format) {
    case 'json':
      // JSON lines: one object per record, streamable into jq or a SIEM.
      return rows.map((r) => `${JSON.stringify(Object.fromEntries(names.map((n, i) => [n, r[i]])))}\n`).join('');
    case 'csv': {
      const cell = (c: string | null) => (c === null ? '' : /[",\n\r]/.test(c) ? `"${c.replaceAll('"', '""')}"` : c);
      return [names, ...rows].map((r) => `${r.map(cell).join(',')}\n`).join('');
    }
    case 'table': {
      const shown = rows.map((r) => r.map((c) => c ?? '-'));
      const widths = names.map((n, i) => Math.max(n.length, ...shown.map((r) => r[i]!.length)));
      const line = (r: string[]) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`;
      return `${line(names)}${shown.map(line).join('')}(${rows.length} record${rows.length === 1 ? '' : 's'})\n`;
    }
  }
}
