// An explanation as a reviewer reads it: the request and the caller, every step with its result,
// and the decision.
import type { ExplainStep, Explanation } from './explain.ts';

const RESULT: Record<ExplainStep['result'], string> = {
  match: 'match',
  no_match: 'no match',
  pending: 'pending',
  error: 'error',
  allow: 'allow',
  deny: 'deny',
  not_asked: 'not asked',
  not_applied: '-',
};

export function formatExplanation(e: Explanation): string {
  const r = e.request;
  const p = e.principal;
  const facts = [`${r.method} ${r.path} (${r.endpoint})`];
  if (r.bodyFollows) {
    facts.push(`model=${r.model}`, `stream=${r.stream}`, `max_tokens=${r.maxTokens ?? '-'}`);
    if (r.dataClasses.size > 0) facts.push(`data_classes=[${[...r.dataClasses].join(', ')}]`);
    if (r.route !== undefined) facts.push(`route=${r.route.name}`);
  }
  const who = [`id=${p.id}`, `tenant=${p.tenant}`];
  if (p.team !== undefined) who.push(`team=${p.team}`);
  if (p.user !== undefined) who.push(`user=${p.user}`);
  who.push(`roles=[${p.roles.join(', ')}]`, `method=${p.method}`, `issuer=${p.issuer || '-'}`);
  const rows = e.steps.map((s) => [
    s.decided ? '=>' : '  ',
    s.kind === 'rule' && s.action ? s.action : s.kind,
    s.ruleId,
    RESULT[s.result],
    s.detail,
  ]);
  const widths = [2, 0, 0, 0].map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) =>
    row
      .map((cell, i) => (i < 4 ? cell.padEnd(widths[i]!) : cell))
      .join('  ')
      .trimEnd(),
  );
  const d = e.decidedBy;
  const verdict =
    d === undefined
      ? `allow: nothing restricts this caller (no credential scope, no rules) at ${e.decidedAt}`
      : d.effect === 'deny'
        ? `deny by ${d.ruleId} at ${e.decidedAt}: ${d.reason} (${d.code ?? 'policy_denied'})`
        : `allow by ${d.ruleId} at ${e.decidedAt}: ${d.reason}`;
  return [
    `request    ${facts.join(' ')}`,
    `principal  ${who.join(' ')}`,
    '',
    ...lines,
    '',
    `decision: ${verdict}`,
  ].join('\n');
}
