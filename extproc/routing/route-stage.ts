// Chooses where a request goes. The model the body names is resolved through the aliases (and
// the body rewritten, so what the model server parses is what policy judges), then the first
// route that serves it and may receive it is chosen: a request carrying a data class goes only
// to routes that list that class, and a caller with a residency (routing.principalLabels) only
// to routes with the same label. The route's name goes to Envoy in an x-lmgate-* header with
// Envoy's route cache cleared, and the route's own credential replaces the client's.
import { apiSpec } from '../llm/apis.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { type Route, RoutingTable } from './table.ts';

export const routing = defineStage({
  name: 'routing.route',
  summary: 'Resolves model aliases and chooses the route (upstream) by model, data classes and residency.',
  needs: ['api', 'parsed'],
  provides: ['route'],
  create: (config, deps) => {
    const table = new RoutingTable(config, {
      readCredentials: true,
      onCredentialError: (route, why) => deps.logger.error({ route }, `routing: ${why}`),
    });
    const fallback = table.fallback;
    const declaredHeader = config.routing.dataClassesHeader;
    const header = config.routing.header;
    // TGI's calls name no model in their body; with tgiModel they are routed as that model.
    const tgiModelNamed = config.routing.tgiModel !== undefined;
    if (!table.active && declaredHeader === undefined) return {};

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
        const spec = apiSpec(ctx.api);
        const namesModel = ctx.hasRequestBody && spec?.body === true && (spec.namesModel || tgiModelNamed);
        if (!namesModel && fallback !== undefined) send(ctx, fallback, 'default route: the request names no model');
      },
      onRequestBody(ctx: RequestContext): void {
        const parsed = ctx.parsed;
        const asked = ctx.modelRequested;
        if (parsed === undefined || asked === undefined) return;
        const r = table.resolve(asked, ctx.dataClasses, ctx.principal?.attributes);
        if (r.alias !== undefined) {
          ctx.modelAlias = r.alias;
          ctx.modelRequested = r.model;
          // A body that names no model (TGI) has nothing to rewrite: the route serves it.
          if (parsed.modelSpan !== undefined)
            ctx.editRequestBody(parsed.modelSpan.start, parsed.modelSpan.end, Buffer.from(JSON.stringify(r.model)));
          ctx.decide({
            stage: 'routing.route',
            ruleId: `routing.aliases.${r.alias}`,
            effect: 'modify',
            reason: `model alias resolved to ${r.model}`,
          });
        }
        if ('refusal' in r) {
          const { code, message, ruleId } = r.refusal;
          throw refuse(code, message, code === 'model_not_found' ? { param: 'model' } : { ruleId });
        }
        if (r.route !== undefined) send(ctx, r.route, `serves ${r.model}`);
      },
    };
  },
});
