// How a schema problem is worded for the operator: the path of the field, then what is wrong,
// in the config's own terms. zod's default messages are written for developers ("Invalid
// option: expected one of "a"|"b"", or a bare "Invalid input" for a union); an operator
// reading `check-config` or a rejected reload wants the allowed values as a plain list.
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;

/** identity.apiKeys[0].endpoints[1]; "(root)" for the document itself. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(root)';
}

function expectedValues(values: readonly unknown[]): string {
  const list = values.map((v) => String(v));
  return list.length === 1 ? `expected ${list[0]}` : `expected one of ${list.join(', ')}`;
}

/** The values a union accepts when each of its branches is a fixed set (an enum, a literal),
 * e.g. `z.union([z.enum(endpointNames), z.literal('*')])`; undefined for any other union. */
function unionValues(issue: Extract<Issue, { code: 'invalid_union' }>): unknown[] | undefined {
  if (issue.errors.length === 0) return undefined;
  const values: unknown[] = [];
  for (const branch of issue.errors) {
    for (const sub of branch) {
      if (sub.code !== 'invalid_value' || sub.path.length > 0) return undefined;
      values.push(...sub.values);
    }
  }
  return values;
}

export function describeIssue(issue: Issue): string {
  const where = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${where}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_value':
      return `${where}: ${expectedValues(issue.values)}`;
    case 'invalid_union': {
      const values = unionValues(issue);
      if (values) return `${where}: ${expectedValues(values)}`;
      break;
    }
  }
  return `${where}: ${issue.message}`;
}
