// The `identity.mtls` config section: callers identified by the client certificate Envoy
// verified, by its SPIFFE ID (URI SAN) or its subject, and how each maps to a principal.
import { z } from 'zod';
import { PLACEHOLDER } from './mtls-placeholder.ts';
import { PATH_SEGMENT, TRUST_DOMAIN } from './spiffe.ts';

const CAPTURE = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
/** What a principal field may hold: it goes upstream as a header and into the audit record. */
const PRINTABLE = /^[\x20-\x7e]+$/;

/** A principal field's value: a constant, or {name} placeholders filled from the rule's captures. */
const template = (description: string) =>
  z.string().min(1).regex(PRINTABLE, 'printable ASCII only').describe(description);

/** The principal a matching certificate stands for; `examples` fit the rule kind's captures. */
const principalFields = (examples: { tenant: string; team: string; user: string }) => ({
  tenant: template(
    'Tenant of the caller, sent upstream as x-lmgate-tenant and recorded in audit records: a constant, or {name} placeholders filled from what the rule captures.',
  ).meta({ examples: [examples.tenant] }),
  team: template('Team of the caller, recorded in audit records; a constant or {name} placeholders. Unset: null.')
    .optional()
    .meta({ examples: [examples.team] }),
  user: template(
    'Person or service of the caller, recorded in audit records; a constant or {name} placeholders. Unset: null.',
  )
    .optional()
    .meta({ examples: [examples.user] }),
  roles: z
    .array(template('A role name: a constant or {name} placeholders.'))
    .default([])
    .describe(
      'Role names carried with the caller, constants or {name} placeholders; they grant nothing by themselves.',
    ),
});

export const spiffeRule = z
  .object({
    trustDomain: z
      .string()
      .regex(TRUST_DOMAIN, 'a trust domain is lowercase a-z 0-9 . _ -')
      .describe(
        "Trust domain whose SPIFFE IDs this rule maps; it becomes the principal's issuer. An ID from a trust domain no rule names is refused with 401, so listing one is what trusts it.",
      )
      .meta({ examples: ['prod.example.org'] }),
    path: z
      .string()
      .describe(
        'Shape of the ID\'s path, segment by segment: a literal segment must be equal, {name} captures exactly one segment. "/ns/{ns}/sa/{sa}" reads Kubernetes service accounts as Istio and SPIRE issue them; any other shape works the same ("/region/{region}/service/{service}"). An ID with more or fewer segments does not match.',
      )
      .meta({ examples: ['/ns/{ns}/sa/{sa}'] }),
    ...principalFields({ tenant: '{ns}', team: 'platform', user: '{sa}' }),
  })
  .strict();

export const subjectRule = z
  .object({
    issuer: z
      .string()
      .min(1)
      .regex(PRINTABLE, 'printable ASCII only')
      .describe(
        "Name of the CA that vouches for these certificates (the one Envoy's validation_context trusts), recorded as the principal's issuer.",
      )
      .meta({ examples: ['corp-client-ca'] }),
    match: z
      .record(z.string().regex(/^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$/), z.string().min(1))
      .refine((m) => Object.keys(m).length > 0, 'name at least one subject attribute')
      .describe(
        'Subject attributes the certificate must have, each exactly once: a value must be equal, {name} captures the whole value (types compare case-insensitively: CN, O, OU, 2.5.4.3). Attributes not listed are not looked at.',
      )
      .meta({ examples: [{ O: 'Acme', OU: '{team}', CN: '{cn}' }] }),
    ...principalFields({ tenant: 'acme', team: '{team}', user: '{cn}' }),
  })
  .strict();

export const mtlsConfig = z
  .object({
    source: z
      .enum(['attributes', 'xfcc'])
      .default('attributes')
      .describe(
        "Where the certificate is read from. attributes: the ext_proc request attributes connection.mtls, connection.uri_san_peer_certificate, connection.subject_peer_certificate and connection.peer_certificate (the filter's request_attributes must list them; envoy/envoy-mtls.yaml does); no client can forge them. xfcc: the x-forwarded-client-cert header, only with envoyForwardClientCertDetails: SANITIZE_SET. With attributes, any x-forwarded-client-cert is removed before the request goes upstream and never read.",
      ),
    envoyForwardClientCertDetails: z
      .literal('SANITIZE_SET')
      .optional()
      .describe(
        'Required with source: xfcc, and a statement about every Envoy in front of the gate: its HTTP connection manager has forward_client_cert_details: SANITIZE_SET (it drops any x-forwarded-client-cert a client sends and writes its own) and set_current_client_cert_details with uri: true (and subject: true for subject rules). With any other setting a client could write the header the gate trusts. Unset: XFCC is never read.',
      )
      .meta({ examples: ['SANITIZE_SET'] }),
    spiffe: z
      .array(spiffeRule)
      .default([])
      .describe(
        "How SPIFFE IDs (the certificate's URI SAN) map to principals; the first rule whose trust domain and path match decides, and the principal id is the whole ID. A certificate with several URI SANs is refused with 401 (Envoy's attribute and XFCC would each show a different one); so is a URI that is not a valid SPIFFE ID, or one no rule matches.",
      ),
    subjects: z
      .array(subjectRule)
      .default([])
      .describe(
        'How certificates without a URI SAN map to principals by their subject; the first rule that matches decides, and the principal id is the subject. Without a matching rule such a certificate is refused with 401. A certificate with a URI SAN is always judged by it, never by its subject.',
      ),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.source === 'xfcc' && m.envoyForwardClientCertDetails === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['envoyForwardClientCertDetails'],
        message:
          'source: xfcc trusts a request header: set envoyForwardClientCertDetails: SANITIZE_SET once every Envoy in front of the gate sanitises and sets x-forwarded-client-cert',
      });
    if (m.spiffe.length === 0 && m.subjects.length === 0)
      ctx.addIssue({ code: 'custom', path: [], message: 'no spiffe or subjects rule: no certificate could be mapped' });
    m.spiffe.forEach((r, i) => {
      const captured = new Set<string>();
      if (!r.path.startsWith('/'))
        ctx.addIssue({ code: 'custom', path: ['spiffe', i, 'path'], message: 'a path starts with "/"' });
      else
        for (const seg of r.path.slice(1).split('/')) {
          const name = CAPTURE.exec(seg)?.[1];
          if (name !== undefined) {
            if (captured.has(name))
              ctx.addIssue({ code: 'custom', path: ['spiffe', i, 'path'], message: `{${name}} captured twice` });
            captured.add(name);
          } else if (!PATH_SEGMENT.test(seg) || seg === '.' || seg === '..')
            ctx.addIssue({
              code: 'custom',
              path: ['spiffe', i, 'path'],
              message: `segment "${seg}" is neither {name} nor a SPIFFE path segment (A-Z a-z 0-9 . _ -)`,
            });
        }
      checkPlaceholders(r, captured, ['spiffe', i], ctx);
    });
    m.subjects.forEach((r, i) => {
      const captured = new Set<string>();
      const types = new Set<string>();
      for (const [type, value] of Object.entries(r.match)) {
        if (types.has(type.toUpperCase()))
          ctx.addIssue({ code: 'custom', path: ['subjects', i, 'match', type], message: `${type} named twice` });
        types.add(type.toUpperCase());
        const name = CAPTURE.exec(value)?.[1];
        if (name === undefined) continue;
        if (captured.has(name))
          ctx.addIssue({ code: 'custom', path: ['subjects', i, 'match', type], message: `{${name}} captured twice` });
        captured.add(name);
      }
      checkPlaceholders(r, captured, ['subjects', i], ctx);
    });
  })
  .describe(
    'Callers identified by the client certificate Envoy verified on an mTLS listener (envoy/envoy-mtls.yaml), for requests that present no API key or JWT. Unset: certificates identify nobody.',
  );

/** Every {name} a principal field uses must be one the rule captures. */
function checkPlaceholders(
  r: { tenant: string; team?: string | undefined; user?: string | undefined; roles: string[] },
  captured: ReadonlySet<string>,
  at: (string | number)[],
  ctx: z.RefinementCtx,
): void {
  const fields: [string | number, string | undefined][] = [
    ['tenant', r.tenant],
    ['team', r.team],
    ['user', r.user],
    ...r.roles.map((v, k): [number, string] => [k, v]),
  ];
  for (const [field, value] of fields) {
    if (value === undefined) continue;
    for (const m of value.matchAll(PLACEHOLDER)) {
      if (!captured.has(m[1]!))
        ctx.addIssue({
          code: 'custom',
          path: [...at, ...(typeof field === 'number' ? ['roles', field] : [field])],
          message: `{${m[1]}} is not captured by this rule`,
        });
    }
  }
}

export type MtlsConfig = z.infer<typeof mtlsConfig>;
