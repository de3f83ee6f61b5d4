// The template syntax of identity.mtls principal fields, shared by the config's validation and
// the mapping that fills templates per request (kept apart from the zod schema, so the serving
// gate never loads zod).

/** {name} in a template: a value captured from the SPIFFE path or the subject. */
export const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
