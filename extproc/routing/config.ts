// The `routing` config section: which upstream serves which model, under which labels, with
// which credential. The gate names the chosen route in a request header and clears Envoy's
// route cache; Envoy's route table maps that header to a cluster (envoy/envoy.yaml). Envoy keeps
// retries, failover and load balancing; the gate only decides where a request may go.
import { z } from 'zod';

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'route names are 1-64 characters of A-Z a-z 0-9 _ . -');
const patterns = z.array(z.string().min(1)).min(1);
const labels = z.record(z.string().min(1), z.string());

const credential = z
  .object({
    from: z
      .string()
      .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'env:VARIABLE or file:/path')
      .describe(
        'Where the credential is read when the config is loaded or reloaded: env:VARIABLE, or file:/path (a Kubernetes Secret mount; a trailing newline is trimmed). Never the credential itself, so the config holds no secret.',
      )
      .meta({ examples: ['env:VLLM_API_KEY'] }),
    header: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'a lower-case header name')
      .default('authorization')
      .describe('Request header the credential is sent in; any value the client sent in it is replaced.'),
    prefix: z
      .string()
      .default('Bearer ')
      .describe(
        'Written before the credential in the header ("Bearer " for OpenAI-compatible servers; "" for a bare key).',
      ),
  })
  .strict()
  .describe(
    "The model server's own credential for this route. The client's credential never goes upstream. A credential that cannot be read (variable unset, file missing or empty) is logged when the config loads, and requests to the route fail closed with 503 upstream_credential_unavailable.",
  );

const route = z
  .object({
    name: name
      .describe(
        'Route name, sent to Envoy in routing.header; Envoy maps it to a cluster. Recorded in audit records and readable by policy rules.',
      )
      .meta({ examples: ['large'] }),
    models: patterns
      .describe(
        'Models this route serves, as patterns where * matches any run of characters. A request goes to the first route, in this order, that serves its model (after aliases) and may receive it.',
      )
      .meta({ examples: [['llama-3.1-70b-*']] }),
    labels: labels
      .default({})
      .describe(
        'Labels of the route (residency: eu, env: hipaa, owner: acme): policy rules read them as route.labels, and routing.principalLabels match them against the caller.',
      ),
    dataClasses: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Data classes this route may receive (phi, pii, pci, ...). A request carrying a data class goes only to routes that list it; [] receives only requests without one.',
      ),
    credential: credential.optional(),
  })
  .strict();

export const routingConfig = z
  .object({
    header: z
      .string()
      .regex(/^x-lmgate-[a-z0-9-]+$/, 'an x-lmgate-* header (header hygiene strips those from clients)')
      .default('x-lmgate-route')
      .describe(
        'Request header that carries the chosen route to Envoy. It must be an x-lmgate-* header, which header hygiene strips from client requests, so a client cannot pick a route itself.',
      ),
    routes: z
      .array(route)
      .default([])
      .describe(
        "Upstreams and the models each serves. With none, the gate does not route and every request takes Envoy's default route. With some, a model no route serves is refused with 404 model_not_found.",
      ),
    aliases: z
      .record(z.string().min(1), z.string().min(1))
      .default({})
      .describe(
        'Model names clients may use for another model: {"gpt-4o": "llama-3.1-70b-instruct"}. The body\'s model is rewritten before it goes upstream; policy judges the target; audit records keep both.',
      ),
    default: name
      .optional()
      .describe(
        "Route for requests that name no model (model listings, requests without a body). Unset: they take Envoy's default route, with no injected credential.",
      )
      .meta({ examples: ['small'] }),
    tgiModel: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The model Text Generation Inference's native API (/generate, /generate_stream, /) serves: TGI serves one model and its body names none, so such calls are routed, judged (to.models, key models), limited and priced as this model. Unset: they name no model; they take routing.default, match no to.models rule, are refused to keys limited to some models, and are not priced.",
      )
      .meta({ examples: ['meta-llama/Llama-3.1-8B-Instruct'] }),
    principalLabels: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Caller attributes that a route must match: for each name listed (residency), a caller whose principal carries that attribute only reaches routes whose label of the same name has the same value. A caller without it is not restricted.',
      ),
    dataClassesHeader: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'a lower-case header name')
      .optional()
      .describe(
        'Request header in which a client declares the data classes its request carries (x-data-classes: phi,pii), added to those a detection stage finds. A declaration can only narrow where the request may go. Removed before the request goes upstream.',
      )
      .meta({ examples: ['x-data-classes'] }),
  })
  .strict()
  .superRefine((r, ctx) => {
    const names = new Set<string>();
    r.routes.forEach((route, i) => {
      if (names.has(route.name))
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `duplicate route "${route.name}"` });
      names.add(route.name);
    });
    if (r.default !== undefined && !names.has(r.default))
      ctx.addIssue({ code: 'custom', path: ['default'], message: `no route named "${r.default}"` });
    for (const [alias, target] of Object.entries(r.aliases))
      if (Object.hasOwn(r.aliases, target))
        ctx.addIssue({
          code: 'custom',
          path: ['aliases', alias],
          message: `"${alias}" points at "${target}", itself an alias: aliases do not chain`,
        });
  })
  .prefault({})
  .describe(
    'Where each request goes: routes per model, model aliases, data-class and residency rules, upstream credentials.',
  );
