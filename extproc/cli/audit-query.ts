export const AUDIT_QUERY_USAGE = 'lm-gate audit query [FILTERS] [--format table|json|csv] FILES…';
export async function auditQuery(_args: string[]): Promise<number> {
  throw new Error('not yet');
}
