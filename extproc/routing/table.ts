// The routing decision, compiled once per config snapshot and shared by the routing stage and
// `lm-gate policy explain|test`, so what explain says is where the gate sends a request.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.ts';
import type { RouteChoice } from '../pipeline/context.ts';
import type { ErrorCode } from '../pipeline/errors.ts';
import { compileModelPatterns, modelKey } from '../policy/model-names.ts';
import type { Matcher } from '../policy/patterns.ts';

type RouteConfig = Config['routing']['routes'][number];

export interface Route {
  readonly choice: RouteChoice;
  readonly serves: Matcher;
  /** Lower-case: data class names compare case-insensitively (PHI, phi). */
  readonly dataClasses: ReadonlySet<string>;
  /** [header, value] of the upstream credential; null when it could not be read (fail closed);
   * undefined when the route has none. */
  readonly credential: readonly [string, string] | null | undefined;
}

export type Resolution =
  | { readonly model: string; readonly alias: string | undefined; readonly route: Route | undefined }
  | {
      readonly refusal: {
        readonly code: Extract<ErrorCode, 'model_not_found' | 'no_eligible_route'>;
        readonly message: string;
        readonly ruleId: string | undefined;
      };
      readonly model: string;
      readonly alias: string | undefined;
    };

export class RoutingTable {
  readonly routes: readonly Route[];
  readonly fallback: Route | undefined;
  private readonly aliases: ReadonlyMap<string, string>;
  private readonly principalLabels: readonly string[];

  /** `readCredentials: false` leaves credentials unread (explain never sends a request). */
  constructor(
    config: Config,
    opts: { readCredentials: boolean; onCredentialError?: (route: string, why: string) => void },
  ) {
    const r = config.routing;
    this.routes = r.routes.map((c) => compileRoute(c, opts));
    this.fallback = r.default === undefined ? undefined : this.routes.find((x) => x.choice.name === r.default);
    // By key: an alias is found under every spelling a server would resolve (model-names.ts).
    this.aliases = new Map(Object.entries(r.aliases).map(([from, to]) => [modelKey(from), to]));
    this.principalLabels = r.principalLabels;
  }

  /** Whether it changes anything: routes or aliases configured. */
  get active(): boolean {
    return this.routes.length > 0 || this.aliases.size > 0;
  }

  /** The model upstream gets (an alias resolved) and the first route that serves it and may
   * receive a request with these data classes from a caller with these attributes. */
  resolve(
    asked: string,
    dataClasses: ReadonlySet<string>,
    attributes: Readonly<Record<string, string>> | undefined,
  ): Resolution {
    const target = this.aliases.get(modelKey(asked));
    const model = target ?? asked;
    const alias = target === undefined ? undefined : asked;
    if (this.routes.length === 0) return { model, alias, route: undefined };
    let serving = 0;
    let excludedBy: string | undefined;
    for (const route of this.routes) {
      if (!route.serves(model)) continue;
      serving++;
      const why = this.ineligible(route, dataClasses, attributes);
      if (why === undefined) return { model, alias, route };
      excludedBy ??= why;
    }
    if (serving === 0)
      return {
        model,
        alias,
        refusal: {
          code: 'model_not_found',
          message: `The model \`${model}\` does not exist or you do not have access to it.`,
          ruleId: undefined,
        },
      };
    return {
      model,
      alias,
      refusal: {
        code: 'no_eligible_route',
        message: `No route serving \`${model}\` may receive this request.`,
        ruleId: excludedBy,
      },
    };
  }

  /** Why a route may not receive this request (the rule id that excluded it), or undefined. */
  private ineligible(
    route: Route,
    dataClasses: ReadonlySet<string>,
    attributes: Readonly<Record<string, string>> | undefined,
  ): string | undefined {
    for (const c of dataClasses) {
      const name = c.toLowerCase();
      if (!route.dataClasses.has(name)) return `routing.dataClasses.${name}`;
    }
    if (attributes !== undefined)
      for (const label of this.principalLabels) {
        const want = attributes[label];
        if (want !== undefined && route.choice.labels[label] !== want) return `routing.principalLabels.${label}`;
      }
    return undefined;
  }
}

function compileRoute(
  c: RouteConfig,
  opts: { readCredentials: boolean; onCredentialError?: (route: string, why: string) => void },
): Route {
  return {
    choice: { name: c.name, labels: c.labels },
    serves: compileModelPatterns(c.models),
    dataClasses: new Set(c.dataClasses.map((x) => x.toLowerCase())),
    credential:
      c.credential === undefined || !opts.readCredentials
        ? undefined
        : readCredential(c.name, c.credential, opts.onCredentialError),
  };
}

/** The credential, read once per config snapshot (a rotated Secret takes effect at the next
 * reload). Null when it cannot be read: requests to that route then fail closed. */
function readCredential(
  route: string,
  c: NonNullable<RouteConfig['credential']>,
  onError: ((route: string, why: string) => void) | undefined,
): readonly [string, string] | null {
  const [kind, ...rest] = c.from.split(':');
  const where = rest.join(':');
  let value: string | undefined;
  try {
    value = kind === 'env' ? process.env[where] : readFileSync(where, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    onError?.(route, `credential file unreadable: ${(err as Error).message}`);
    return null;
  }
  if (!value) {
    onError?.(route, 'credential is empty or unset');
    return null;
  }
  return [c.header, c.prefix + value];
}
