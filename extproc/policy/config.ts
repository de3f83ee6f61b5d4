// The `policy` config section: gate-wide access rules. What one API key may use is set on the key
// (identity.apiKeys[].models and .endpoints, its credential scope, which policy.access enforces);
// the rules here (policy.rules, in the shape of Istio's AuthorizationPolicy, with CEL
// conditions), tenant isolation and an optional OPA are what policy.rules enforces after it.
import { z } from 'zod';
import { isTimeZone } from '../config/time-zone.ts';
import { ConditionError, celEnvironment, compileCondition } from './cel.ts';
import { PRINCIPAL_METHODS, RULE_ENDPOINTS } from './endpoints.ts';
import { compilePatterns } from './patterns.ts';

const patterns = (what: string, example: string[]) =>
  z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe(`${what}. Unset: any.`)
    .meta({ examples: [example] });

/** Exported for other sections that pick by caller (dlp.assign, audit.capture.rules): one shape for "who". */
export const ruleFrom = z
  .object({
    principals: patterns("The caller's principal id (an API key's id, a JWT's subject)", ['team-a', 'svc-*']),
    tenants: patterns("The caller's tenant", ['acme']),
    teams: patterns("The caller's team (a caller without one matches none)", ['research']),
    roles: patterns('A role of the caller', ['compliance-officer']),
    issuers: patterns('Who identified the caller: "config" for API keys, a JWT\'s iss', ['https://idp.acme.example']),
    methods: patterns('How the caller was identified: api_key, jwt or mtls', ['jwt']),
  })
  .strict()
  .optional()
  .describe(
    'Who the rule is about. Each field is a list of patterns (* matches any run of characters), any of which may match; every field set must match. Unset: every caller.',
  );

export const ruleTo = z
  .object({
    endpoints: patterns(`The endpoint called: ${RULE_ENDPOINTS.join(', ')} (a path outside the LLM APIs)`, [
      'openai.chat',
      'openai.completions',
    ]),
    models: patterns('The model the body asks for (read once the body is in; a call without a model matches none)', [
      'gpt-4o',
      'llama-3.1-*',
    ]),
    routes: patterns('The route a routing stage chose (read once the body is in; no route matches none)', ['eu-*']),
  })
  .strict()
  .optional()
  .describe('What the rule is about, with patterns as in from; every field set must match. Unset: every request.');

const ruleConfig = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'rule ids are 1-64 characters of A-Z a-z 0-9 . _ -')
      .describe(
        'Names the rule in 403s (rule_id "policy.rules.<id>"), audit records, lmgate_policy_decisions_total and `lm-gate policy explain`. Unique among the rules.',
      )
      .meta({ examples: ['deny-interns-large-models'] }),
    action: z
      .enum(['ALLOW', 'DENY'])
      .describe(
        'DENY: a request the rule matches is refused with 403, whatever any ALLOW rule says. ALLOW: a request the rule matches is admitted unless a DENY rule matches it.',
      )
      .meta({ examples: ['DENY'] }),
    from: ruleFrom,
    to: ruleTo,
    when: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A CEL condition over principal, request, data_classes, route and time (README "Policy rules"); the rule matches only when it is true. Checked when the config loads. One that fails on a request (a missing map key) counts as matching for DENY and as not matching for ALLOW. Unset: no condition.',
      )
      .meta({ examples: ['request.max_tokens > 4096 && !("senior" in principal.roles)'] }),
  })
  .strict();

const opaConfig = z
  .object({
    url: z
      .url({ protocol: /^https?$/ })
      .describe('Base URL of the OPA server (its REST API); the gate POSTs to <url>/v1/data/<path>.')
      .meta({ examples: ['http://127.0.0.1:8181'] }),
    path: z
      .string()
      .regex(/^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/, 'a data path such as lmgate/allow (package path and rule, by /)')
      .describe(
        "The decision's data path (package lmgate, rule allow: lmgate/allow). It must evaluate to true, false, or {allow, rule_id?, reason?}; the decision's rule id is rule_id, or opa:<path>.",
      )
      .meta({ examples: ['lmgate/allow'] }),
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('Milliseconds to wait for OPA; must be under server.messageDeadlineMs.'),
    onError: z
      .literal('deny')
      .default('deny')
      .describe(
        'What a timeout, an unreachable OPA, an error status or an undefined or malformed result means: deny, with 503 policy_unavailable (fail closed; the client may retry).',
      ),
  })
  .strict()
  .optional()
  .describe(
    'Ask an Open Policy Agent too, after the local rules allowed a request (both must allow): its REST data API, with the same input as the rules. Unset: no external call.',
  );

export const policyConfig = z
  .object({
    defaultMaxTokens: z
      .number()
      .int()
      .positive()
      .optional()
      .meta({ examples: [1024] })
      .describe(
        "Output tokens for a request to an API that generates and sets none (Ollama: or a negative num_predict, no limit): written into the request before any rule judges it (OpenAI max_tokens, Ollama options.num_predict, TGI parameters.max_new_tokens), so the server stops where policy and limits counted. Unset: the request goes as sent, and request.max_tokens is then CEL's largest int, which a cap such as request.max_tokens > 4096 refuses.",
      ),
    unknownEndpoints: z
      .enum(['reject', 'allow'])
      .default('reject')
      .describe(
        'Paths that are not a known LLM API (OpenAI, Ollama): reject refuses them with 404 for every caller; allow lets them through for authenticated callers whose key has endpoints ["*"], unparsed and unmetered, and refuses other keys with 403.',
      ),
    rules: z
      .array(ruleConfig)
      .default([])
      .describe(
        'Access rules (policy.rules stage), after the credential scope: DENY rules first, then ALLOW rules; with any rule configured, a request no ALLOW rule matches is refused (rule_id policy.default). Empty: every caller within its scope is admitted.',
      ),
    tenantModels: z
      .record(z.string().min(1), z.array(z.string().min(1)).min(1))
      .optional()
      .describe(
        'Models each tenant owns, as patterns: a model one tenant owns is refused to every other tenant (rule_id policy.tenantIsolation.<owner>) before any rule is read. Models no tenant owns are shared.',
      )
      .meta({ examples: [{ acme: ['acme-*'], globex: ['globex-ft-*'] }] }),
    timeZone: z
      .string()
      .default('UTC')
      .describe('IANA time zone of the time.localHour() and time.localWeekday() conditions use.'),
    opa: opaConfig,
  })
  .strict()
  .superRefine((policy, ctx) => {
    if (!isTimeZone(policy.timeZone)) {
      ctx.addIssue({ code: 'custom', path: ['timeZone'], message: `unknown time zone "${policy.timeZone}"` });
      return;
    }
    const env = celEnvironment(policy.timeZone);
    const ids = new Set<string>();
    policy.rules.forEach((rule, i) => {
      if (ids.has(rule.id))
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${rule.id}"` });
      ids.add(rule.id);
      for (const [field, known] of [
        ['endpoints', RULE_ENDPOINTS],
        ['methods', PRINCIPAL_METHODS],
      ] as const) {
        const list = field === 'endpoints' ? rule.to?.endpoints : rule.from?.methods;
        list?.forEach((p, j) => {
          // A pattern that can match nothing is a typo that would silently never apply.
          if (!known.some(compilePatterns([p])))
            ctx.addIssue({
              code: 'custom',
              path: ['rules', i, field === 'endpoints' ? 'to' : 'from', field, j],
              message: `rule "${rule.id}": "${p}" matches none of ${known.join(', ')}`,
            });
        });
      }
      if (rule.when !== undefined) {
        try {
          compileCondition(env, rule.when);
        } catch (err) {
          if (!(err instanceof ConditionError)) throw err;
          ctx.addIssue({ code: 'custom', path: ['rules', i, 'when'], message: `rule "${rule.id}": ${err.message}` });
        }
      }
    });
  })
  .prefault({})
  .describe(
    'Gate-wide access policy: rules in the shape of Istio AuthorizationPolicy with CEL conditions, tenant isolation and an optional OPA (policy.rules stage), after the scope each API key carries (policy.access).',
  );

export type PolicyConfig = z.infer<typeof policyConfig>;
export type RuleConfig = PolicyConfig['rules'][number];
