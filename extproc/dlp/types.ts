// The vocabulary of the DLP engine: detector type names, data classes, actions and findings.

export const BUILTIN_TYPES = [
  'CREDIT_CARD',
  'IBAN',
  'US_SSN',
  'EMAIL',
  'PHONE',
  'IP_ADDRESS',
  'UK_NHS',
  'DATE_OF_BIRTH',
  'AWS_ACCESS_KEY',
  'AWS_SECRET_KEY',
  'GITHUB_TOKEN',
  'SLACK_TOKEN',
  'STRIPE_KEY',
  'GCP_API_KEY',
  'PRIVATE_KEY',
  'JWT',
  'CONNECTION_STRING',
  'GENERIC_SECRET',
] as const;
export type BuiltinType = (typeof BUILTIN_TYPES)[number];

export const DATA_CLASSES = ['PII', 'PHI', 'PCI', 'SECRET', 'custom'] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

export const ACTIONS = ['block', 'redact', 'mask', 'pseudonymise', 'warn'] as const;
export type Action = (typeof ACTIONS)[number];

/** One detected entity. Offsets are UTF-16 units into the raw (un-normalised) text, end
 * exclusive: what the gate slices with. The CLI converts them to code points. */
export interface Finding {
  /** A built-in type name or the name of a policy's custom pattern or word list. */
  type: string;
  start: number;
  end: number;
  /** 0..1 after context words; findings under the policy's minConfidence are not reported. */
  confidence: number;
  dataClass: DataClass;
  action: Action;
}
