// The composition root: every stage, in the order it runs. The order is policy: hygiene before
// anything reads a header; who is calling (401) before what they ask for (400/404) before whether
// they may (403) before metering. Budgets come before routing, so a request a spent budget
// downgrades to a cheaper model is routed, kill-checked and judged by policy as that model; rate
// limits after policy, so a refused request spends no rate. The kill switch's caller check comes right after identity, so a
// killed key is refused before any other stage can answer differently than for an unknown key;
// DLP reads the body before routing and policy, which judge the data classes it finds, and the
// injection guard right after it (a request DLP blocks is not scored);
// its model check comes once routing has resolved an alias to the model that would serve. The
// config only chooses which of the optional ones run (pipeline.stages); its enum and its
// dependency check are derived from this list.
import { dlpSetup } from '../dlp/gate/engine.ts';
import { dlpRequestStage } from '../dlp/gate/request-stage.ts';
import { dlpResponseStage } from '../dlp/gate/response-stage.ts';
import { injectionGuardStage } from '../guard/gate/stage.ts';
import { headerHygiene } from '../http/hygiene-stage.ts';
import { authenticate } from '../identity/authenticate-stage.ts';
import { killModel } from '../killswitch/model-stage.ts';
import { killPrincipal } from '../killswitch/principal-stage.ts';
import { budgets } from '../limits/budget-stage.ts';
import { rateLimits } from '../limits/rate-stage.ts';
import { apiShape } from '../llm/api-shape-stage.ts';
import { usageMetering } from '../metering/usage-stage.ts';
import { policyAccess } from '../policy/access-stage.ts';
import { modelList } from '../policy/model-list-stage.ts';
import { policyRules } from '../policy/rules-stage.ts';
import { routing } from '../routing/route-stage.ts';
import { BASE_FACTS, type Fact, type StageDescriptor } from './stage.ts';

export const STAGES = [
  headerHygiene,
  authenticate,
  killPrincipal,
  apiShape,
  dlpRequestStage(dlpSetup),
  injectionGuardStage(),
  budgets,
  routing,
  killModel,
  policyAccess,
  policyRules,
  modelList,
  rateLimits,
  usageMetering,
  dlpResponseStage(dlpSetup),
] as const;

/** The stages pipeline.stages may list, in order. Annotated, not inferred: the config's type
 * must not depend on the stages' types, which take the config. */
export const STAGE_NAMES: readonly [string, ...string[]] = STAGES.filter((s) => !s.always).map((s) => s.name) as [
  string,
  ...string[],
];

/** The stages that run whatever pipeline.stages says. */
export const ALWAYS_STAGE_NAMES: readonly string[] = STAGES.filter((s) => s.always).map((s) => s.name);

/** Problems with running `chosen` (plus every `always` stage) out of `catalog`: a stage whose
 * need no earlier stage provides would silently check nothing (policy without the parsed body
 * skips the model rule), so such a pipeline is refused. */
export function stageGraphProblems(
  chosen: ReadonlySet<string>,
  catalog: readonly StageDescriptor[] = STAGES,
): string[] {
  const problems: string[] = [];
  const have = new Set<Fact>(BASE_FACTS);
  for (const s of catalog) {
    if (!s.always && !chosen.has(s.name)) continue;
    for (const need of s.needs) {
      if (have.has(need)) continue;
      const providers = catalog.filter((p) => p.provides.includes(need));
      const names = providers.map((p) => `"${p.name}"`).join(' or ');
      const running = providers.filter((p) => p.always || chosen.has(p.name));
      problems.push(
        `stage "${s.name}" needs the ${need} fact, ` +
          (providers.length === 0
            ? 'which no stage provides'
            : running.length > 0
              ? `but ${names} runs after it`
              : `which ${names} provides: add it`),
      );
    }
    for (const f of s.provides) have.add(f);
  }
  return problems;
}
