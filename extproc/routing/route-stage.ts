// Chooses where a request goes. The model the body names is resolved through the aliases (and
// the body rewritten, so what the model server parses is what policy judges), then the first
// route that serves it and may receive it is chosen: a request carrying a data class goes only
// to routes that list that class, and a caller with a residency (routing.principalLabels) only
// to routes with the same label. The route's name goes to Envoy in an x-lmgate-* header with
// Envoy's route cache cleared, and the route's own credential replaces the client's.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.ts';
import { apiSpec } from '../llm/apis.ts';
import type { RequestContext, RouteChoice } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { compilePatterns, type Matcher } from '../policy/patterns.ts';
import type { Logger } from '../telemetry/logger.ts';

type RouteConfig = Config['routing']['routes'][number];

interface Route {
  readonly choice: RouteChoice;
  readonly serves: Matcher;
  readonly dataClasses: ReadonlySet<string>;
  /** [header, value] of the upstream credential; null when it could not be read (fail closed). */
  readonly credential: readonly [string, string] | null | undefined;
}

export const routing = defineStage({
  name: 'routing.route',
  summary: 'Resolves model aliases and chooses the route (upstream) by model, data classes and residency.',
  needs: ['api', 'parsed'],
  provides: ['route'],
  create: (config, deps) => {
    const r = config.routing;
    const routes = r.routes.map((c) => compileRoute(c, deps.logger));
    const byName = new Map(routes.map((x) => [x.choice.name, x]));
    const fallback = r.default === undefined ? undefined : byName.get(r.default);
    const aliases = new Map(Object.entries(r.aliases));
    const declaredHeader = r.dataClassesHeader;
    const principalLabels = r.principalLabels;
    const header = r.header;
    if (routes.length === 0 && aliases.size === 0 && declaredHeader === undefined) return {};

    const send = (ctx: RequestContext, route: Route, why: string): void => {
      if (route.credential === null)
        throw refuse('upstream_credential_unavailable', 'The gateway cannot reach this model right now.', {
          ruleId: `routing.routes.${route.choice.name}.credential`,
        });
      ctx.route = route.choice;
      const out = ctx.out;
      out.setHeaders.push([header, route.choice.name]);
      if (route.credential !== undefined) out.setHeaders.push([route.credential[0], route.credential[1]]);
      out.clearRouteCache = true;
      ctx.setMetadata('route', route.choice.name);
      ctx.decide({
        stage: 'routing.route',
        ruleId: `routing.routes.${route.choice.name}`,
        effect: 'allow',
        reason: why,
      });
    };

    return {
      onRequestHeaders(ctx: RequestContext): void {
        if (declaredHeader !== undefined) {
          const declared = ctx.headers.get(declaredHeader);
          ctx.out.removeHeaders.push(declaredHeader);
          if (declared !== undefined) {
            const classes = new Set(ctx.dataClasses);
            for (const c of declared.split(',')) {
              const name = c.trim().toLowerCase();
              if (name !== '') classes.add(name);
            }
            ctx.dataClasses = classes;
          }
        }
        // A request that will name its model is routed at its body; the others (model
        // listings, bodiless calls) take the default route now, if there is one.
        const namesModel = ctx.hasRequestBody && apiSpec(ctx.api)?.body === true;
        if (!namesModel && fallback !== undefined) send(ctx, fallback, 'default route: the request names no model');
      },
      onRequestBody(ctx: RequestContext): void {
        const parsed = ctx.parsed;
        const asked = ctx.modelRequested;
        if (parsed === undefined || asked === undefined) return;
        let model = asked;
        const target = aliases.get(asked);
        if (target !== undefined) {
          model = target;
          ctx.modelAlias = asked;
          ctx.modelRequested = target;
          ctx.editRequestBody(parsed.modelSpan.start, parsed.modelSpan.end, Buffer.from(JSON.stringify(target)));
          ctx.decide({
            stage: 'routing.route',
            ruleId: `routing.aliases.${asked}`,
            effect: 'modify',
            reason: `model alias resolved to ${target}`,
          });
        }
        if (routes.length === 0) return;
        let serving = 0;
        let excludedBy: string | undefined;
        for (const route of routes) {
          if (!route.serves(model)) continue;
          serving++;
          const refusal = ineligible(ctx, route, principalLabels);
          if (refusal === undefined) {
            send(ctx, route, `serves ${model}`);
            return;
          }
          excludedBy ??= refusal;
        }
        if (serving === 0)
          throw refuse('model_not_found', `The model \`${model}\` does not exist or you do not have access to it.`, {
            param: 'model',
          });
        throw refuse('no_eligible_route', `No route serving \`${model}\` may receive this request.`, {
          ruleId: excludedBy,
        });
      },
    };
  },
});

/** Why a route may not receive this request (the rule id that excluded it), or undefined. */
function ineligible(ctx: RequestContext, route: Route, principalLabels: readonly string[]): string | undefined {
  for (const c of ctx.dataClasses) if (!route.dataClasses.has(c)) return `routing.dataClasses.${c}`;
  const attributes = ctx.principal?.attributes;
  if (attributes !== undefined)
    for (const label of principalLabels) {
      const want = attributes[label];
      if (want !== undefined && route.choice.labels[label] !== want) return `routing.principalLabels.${label}`;
    }
  return undefined;
}

function compileRoute(c: RouteConfig, logger: Logger): Route {
  return {
    choice: { name: c.name, labels: c.labels },
    serves: compilePatterns(c.models),
    dataClasses: new Set(c.dataClasses.map((x) => x.toLowerCase())),
    credential: c.credential === undefined ? undefined : readCredential(c.name, c.credential, logger),
  };
}

/** The credential, read once per config snapshot (a rotated Secret takes effect at the next
 * reload). Null, logged, when it cannot be read: requests to that route then fail closed. */
function readCredential(
  route: string,
  c: NonNullable<RouteConfig['credential']>,
  logger: Logger,
): readonly [string, string] | null {
  let value: string | undefined;
  try {
    const [kind, ...rest] = c.from.split(':');
    const where = rest.join(':');
    value = kind === 'env' ? process.env[where] : readFileSync(where, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    logger.error({ route, err: (err as Error).message }, 'route credential file unreadable');
    return null;
  }
  if (!value) {
    logger.error({ route }, 'route credential is empty');
    return null;
  }
  return [c.header, c.prefix + value];
}
