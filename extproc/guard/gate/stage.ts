// guard.injection: the prompt-injection guard, right after dlp.request. Under the DLP policy the
// caller gets (dlp.assign, else defaultPolicy), when its `injection.action` is not off: the texts
// a model would read as someone's instructions (collect.ts) are scored by the heuristics, then,
// unless they already blocked, by the classifier sidecar when one is configured. A detection
// under `block` is 403 prompt_injection with rule id injection.<rule> and nothing forwarded;
// under `flag` the request goes on and the audit and metrics record it. The audit's dlp.injection
// keeps the scores, rule ids, classifier outcome and what was done, never the text.
//
// Fails closed: a body the walk cannot read is refused, and so is model input given as token ids
// or embeddings (completions' prompt, Ollama's context), which it cannot read either; a classifier that times out, is
// unreachable or answers badly refuses the request unless its onError says allow.
//
// Cost: with injection off for every policy create() returns no hooks; off for the caller's
// policy, one picker call. Bodies over INLINE_SCAN_MAX_BYTES are scored on the parse pool.
import type { Config } from '../../config/schema.ts';
import { INLINE_SCAN_MAX_BYTES } from '../../dlp/gate/scan-job.ts';
import { dlpState } from '../../dlp/gate/state.ts';
import { compileAssignment } from '../../dlp/picker.ts';
import type { ApiKind } from '../../llm/apis.ts';
import type { Principal, RequestContext } from '../../pipeline/context.ts';
import { refuse } from '../../pipeline/errors.ts';
import { defineStage, type StageDeps } from '../../pipeline/stage.ts';
import { type ClassifierResult, classify } from '../classifier.ts';
import type { InjectionConfig } from '../config.ts';
import type { InjectionAudit } from './audit.ts';
import { collectInjection, type InjectionJob, type InjectionScan, type InjectionTexts } from './collect.ts';

/** One policy's injection settings, action not off. */
export interface InjectionSettings {
  policy: string;
  action: 'flag' | 'block';
  threshold: number;
  classifier: InjectionConfig['classifier'];
}

/** The settings of the caller's policy, or undefined when its injection is off. */
export type InjectionPicker = (principal: Principal | undefined) => InjectionSettings | undefined;

/** Once per config snapshot: undefined when no policy turns injection on. */
export function injectionSetup(config: Config): InjectionPicker | undefined {
  const dlp = config.dlp;
  const byName = new Map<string, InjectionSettings>();
  for (const p of dlp.policies) {
    const inj = p.injection;
    if (inj.action === 'off') continue;
    byName.set(p.name, { policy: p.name, action: inj.action, threshold: inj.threshold, classifier: inj.classifier });
  }
  if (byName.size === 0) return undefined;
  const pickName = compileAssignment(dlp.assign, dlp.defaultPolicy);
  return (principal) => byName.get(pickName(principal));
}

function textsOf(api: ApiKind): InjectionTexts | undefined {
  if (api === 'openai.chat' || api === 'ollama.chat') return 'messages';
  if (api === 'openai.completions' || api === 'ollama.generate') return 'prompt';
  if (api === 'tgi.generate' || api === 'tgi.generate_stream') return 'inputs';
  // Embeddings input is not read as instructions; other endpoints carry no prompt.
  return undefined;
}

const BLOCKED = 'The request was blocked: it looks like a prompt injection or jailbreak attempt.';
const UNCHECKED = 'The request could not be checked for prompt injection, so it was not sent.';

export function injectionGuardStage(resolve: (config: Config) => InjectionPicker | undefined = injectionSetup) {
  return defineStage({
    name: 'guard.injection',
    summary:
      'Scores the texts a model would read as instructions for prompt injection and jailbreaks (heuristics, optional classifier): blocks or flags, per DLP policy.',
    needs: ['api', 'parsed'],
    provides: [],
    create: (config, deps) => {
      const pick = resolve(config);
      if (pick === undefined) return {};
      return {
        onRequestBody(ctx: RequestContext, body: Buffer): void | Promise<void> {
          const parsed = ctx.parsed;
          if (parsed === undefined) return;
          const texts = textsOf(ctx.api);
          if (texts === undefined) return;
          const s = pick(ctx.principal);
          if (s === undefined) return;
          if (parsed.tokenInput !== undefined) {
            // Token ids (or embeddings) are read by the model as text the heuristics cannot see:
            // refused like a body the walk cannot read, whatever the action.
            deps.metrics.countDlpInjection('injection.token_input', 'block');
            ctx.decide({
              stage: 'guard.injection',
              ruleId: 'injection.token_input',
              effect: 'deny',
              reason: `model input as token ids or embeddings in '${parsed.tokenInput}'`,
            });
            throw refuse(
              'prompt_injection',
              `'${parsed.tokenInput}' gives the model token ids or embeddings, which cannot be checked for prompt injection; send text instead.`,
              { ruleId: 'injection.token_input', param: parsed.tokenInput },
            );
          }
          const canonical = ctx.rewrittenBody ?? body;
          const job: InjectionJob = { from: parsed.objectStart, texts, classifierChars: s.classifier?.maxChars ?? 0 };
          const pool = deps.parsePool;
          if (pool !== undefined && canonical.length > INLINE_SCAN_MAX_BYTES) {
            ctx.out.slow = true;
            return pool.scanInjection(job, canonical, ctx.signal).then(
              (scan) => judge(ctx, s, scan, deps),
              (err: unknown) => unreadable(err, deps),
            );
          }
          let scan: InjectionScan;
          try {
            scan = collectInjection(canonical, job);
          } catch (err) {
            return unreadable(err, deps);
          }
          return judge(ctx, s, scan, deps);
        },
      };
    },
  });
}

function unreadable(err: unknown, deps: StageDeps): never {
  deps.logger.error({ err: (err as Error).name }, 'guard.injection: scan failed');
  deps.metrics.countDlpInjection('injection.scan_error', 'block');
  throw refuse('prompt_injection', UNCHECKED, { ruleId: 'injection.scan_error' });
}

function judge(ctx: RequestContext, s: InjectionSettings, scan: InjectionScan, deps: StageDeps): void | Promise<void> {
  const state = dlpState(ctx);
  state.policy ??= s.policy;
  const detected = scan.top !== undefined && scan.score >= s.threshold;
  const audit: InjectionAudit = {
    score: scan.score,
    threshold: s.threshold,
    rules: scan.rules,
    path: scan.path ?? null,
    detected,
    action: s.action,
  };
  state.injection = audit;
  if (detected) {
    for (const r of scan.rules) deps.metrics.countDlpInjection(r, s.action);
    act(ctx, s, scan.top!, `heuristic score ${scan.score} in ${scan.path}`);
    if (s.action === 'block') return;
  }
  const c = s.classifier;
  if (c === undefined || scan.classifierInput === undefined) return;
  // A classifier call is a slow path: the gate asks Envoy to wait up to maxMessageDeadlineMs
  // (the config keeps timeoutMs under it), so its timeout, not the gate's 503, decides.
  ctx.out.slow = true;
  return classify(c, scan.classifierInput, ctx.signal).then((res) => afterClassifier(ctx, s, audit, scan, res, deps));
}

/** Record (and under block, refuse) a detection by `rule`. */
function act(ctx: RequestContext, s: InjectionSettings, rule: string, reason: string): void {
  if (s.action === 'block') {
    ctx.decide({ stage: 'guard.injection', ruleId: rule, effect: 'deny', reason });
    throw refuse('prompt_injection', BLOCKED, { ruleId: rule });
  }
  ctx.decide({ stage: 'guard.injection', ruleId: rule, effect: 'allow', reason: `flagged: ${reason}` });
}

function afterClassifier(
  ctx: RequestContext,
  s: InjectionSettings,
  audit: InjectionAudit,
  scan: InjectionScan,
  res: ClassifierResult,
  deps: StageDeps,
): void {
  const c = s.classifier!;
  if (res.ok) {
    audit.classifier = {
      result: 'score',
      score: res.score,
      ms: res.ms,
      truncated: scan.truncated || res.truncated,
      on_error: null,
    };
    if (res.score < c.threshold) return;
    audit.detected = true;
    deps.metrics.countDlpInjection('injection.classifier', s.action);
    act(ctx, s, 'injection.classifier', `classifier score ${res.score}`);
    return;
  }
  audit.classifier = { result: res.error, score: null, ms: res.ms, truncated: scan.truncated, on_error: c.onError };
  // The request went away: nothing to answer, and nothing to count against the classifier.
  if (res.error === 'aborted') return;
  deps.logger.warn({ error: res.error, ms: res.ms }, 'guard.injection: classifier failed');
  deps.metrics.countDlpInjection('injection.classifier_error', c.onError);
  if (c.onError === 'block') {
    ctx.decide({ stage: 'guard.injection', ruleId: 'injection.classifier_error', effect: 'deny', reason: res.error });
    throw refuse('prompt_injection', UNCHECKED, { ruleId: 'injection.classifier_error' });
  }
  ctx.decide({
    stage: 'guard.injection',
    ruleId: 'injection.classifier_error',
    effect: 'allow',
    reason: `classifier ${res.error}: onError allow`,
  });
}
