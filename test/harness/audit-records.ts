// Audit records as the gate builds them, for tests that feed the sink directly.
import type { AuditRecord } from '../../extproc/audit/record.ts';

/** A refusal the sink itself caused (503 audit_unavailable), as buildAuditRecord makes it for an
 * admission refusal: no principal or route yet. `time` is epoch ms or an ISO string. */
export function sinkRefusalRecord(id: string, time: number | string): AuditRecord {
  return {
    schema_version: 2,
    time: typeof time === 'number' ? new Date(time).toISOString() : time,
    request_id: id,
    principal: null,
    endpoint: { method: 'POST', path: '/v1/chat/completions', api: 'openai.chat' },
    route: null,
    status: 503,
    outcome: 'rejected',
    error: { code: 'audit_unavailable', type: 'service_unavailable', status: 503, rule_id: null },
    decisions: [],
  } as unknown as AuditRecord;
}
