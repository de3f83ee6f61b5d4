// dlp.request: every text the model would see in the request body is scanned before anything
// goes upstream. A block finding refuses the request (403 content_blocked, the detector's rule
// id, nothing forwarded); redact, mask and pseudonymise splice the replacement into the body's
// JSON string (applied with the other stages' edits); warn is only recorded. The data classes
// found become ctx.dataClasses, which routing (a route receives only the classes it lists) and
// policy rules read: this stage runs before both.
//
// Fail closed: when the scan throws or runs past its time budget the request is refused, unless
// the config says dlp onScanError: allow, in which case it goes on and the audit says it was
// not checked.
import type { Config } from '../../config/schema.ts';
import type { Principal, RequestContext } from '../../pipeline/context.ts';
import { refuse } from '../../pipeline/errors.ts';
import { defineStage, type StageDeps } from '../../pipeline/stage.ts';
import type { DlpPolicyConfig } from '../config.ts';
import { applyHits, type CollectedHits, collectHits, ScanBudgetExceeded } from './body-scan.ts';
import type { DlpEngine } from './engine-port.ts';
import { INLINE_SCAN_MAX_BYTES } from './scan-job.ts';
import { addFinding, dlpState } from './state.ts';

export interface DlpGateOptions {
  /** What a failed or over-budget scan does: refuse the request, or let it through unchecked. */
  onScanError: 'block' | 'allow';
  /** Time one body's scan may take before it counts as failed, ms. */
  scanBudgetMs: number;
  /** Response texts are scanned too (and pseudonyms restored). */
  response: boolean;
}

/** One policy as the stages use it: its engine, compiled once per config snapshot. */
export interface DlpPolicySetup {
  engine: DlpEngine;
  options: DlpGateOptions;
  /** The policy the engine was compiled from: with it, large bodies are scanned on the
   * parse pool's workers (which compile it themselves). */
  policy?: DlpPolicyConfig;
}

/** The default policy, and when dlp.assign has entries, how a caller's policy is picked. The
 * response stage uses the policy the request stage picked (kept in the request's DLP state). */
export type DlpGateSetup =
  | (DlpPolicySetup & { pick?: (principal: Principal | undefined) => DlpPolicySetup })
  | undefined;
/** How a stage gets its engine and options from one config snapshot (compiled once there). */
export type DlpGateResolver = (config: Config, deps: StageDeps) => DlpGateSetup;

/** The rule of a refusal for per-token texts DLP cannot check (request and response stages). */
export const TOKEN_DETAILS_RULE = 'dlp.token_details';
/** The rule of a refusal for model input given as token ids or embeddings, which no scan reads. */
export const TOKEN_INPUT_RULE = 'dlp.token_input';

export function blockMessage(type: string, where: 'request' | 'response'): string {
  return where === 'request'
    ? `The request was blocked: it contains sensitive data (${type}).`
    : `The response was stopped: it contained sensitive data (${type}).`;
}

export function dlpRequestStage(resolve: DlpGateResolver) {
  return defineStage({
    name: 'dlp.request',
    summary:
      'Scans every text of the request body for sensitive data: blocks, redacts, masks or pseudonymises it, and sets its data classes.',
    needs: ['api', 'parsed'],
    provides: ['dataClasses'],
    create: (config, deps) => {
      const setup = resolve(config, deps);
      if (setup === undefined) return {};
      const { options } = setup;

      /** The scan failed or ran out of time: refuse, unless the policy lets it through. */
      const failed = (ctx: RequestContext, err: unknown): void => {
        const why = err instanceof ScanBudgetExceeded ? 'budget' : 'error';
        if (why === 'error') deps.logger.error({ err: (err as Error).name }, 'dlp: request scan failed');
        if (options.onScanError === 'block')
          throw refuse('content_blocked', 'The request could not be checked for sensitive data, so it was not sent.', {
            ruleId: `dlp.scan_${why}`,
          });
        dlpState(ctx).failedOpen = `request scan ${why}`;
        ctx.decide({
          stage: 'dlp.request',
          ruleId: 'dlp.onScanError',
          effect: 'allow',
          reason: `scan ${why}: let through unchecked`,
        });
      };

      const apply = (ctx: RequestContext, canonical: Buffer, hits: CollectedHits, engine: DlpEngine): void => {
        const state = dlpState(ctx);
        const session = engine.newSession();
        state.session = session;
        const scan = applyHits(canonical, hits, session, 'request', undefined);
        // Indexed loops: this runs once a request, and for-of here allocated an iterator result
        // per finding while the function was not yet optimised (bench:alloc).
        const findings = scan.findings;
        for (let i = 0; i < findings.length; i++) addFinding(state, findings[i]!);
        deps.metrics.countDlpFindings(findings, 'request');
        if (scan.classes.size > 0) {
          const classes = new Set(ctx.dataClasses);
          for (const c of scan.classes) {
            classes.add(c);
            state.classes.add(c);
          }
          ctx.dataClasses = classes;
        }
        if (scan.blocked !== undefined) {
          const ruleId = `dlp.${scan.blocked.type}`;
          ctx.decide({ stage: 'dlp.request', ruleId, effect: 'deny', reason: `${scan.blocked.type} in the request` });
          throw refuse('content_blocked', blockMessage(scan.blocked.type, 'request'), { ruleId });
        }
        const edits = scan.edits;
        for (let i = 0; i < edits.length; i++) ctx.editRequestBody(edits[i]!.start, edits[i]!.end, edits[i]!.insert);
        if (scan.edits.length > 0)
          ctx.decide({
            stage: 'dlp.request',
            ruleId: 'dlp.actions',
            effect: 'modify',
            reason: `${scan.edits.length} sensitive value(s) replaced in the request`,
          });
      };

      return {
        onRequestBody(ctx: RequestContext, body: Buffer): void | Promise<void> {
          const parsed = ctx.parsed;
          if (parsed === undefined) return;
          // The canonical body (decompressed, BOM removed: what llm.api_shape parsed) is what
          // parsed's spans and every edit refer to.
          const canonical = ctx.rewrittenBody ?? body;
          const from = parsed.objectStart;
          const chosen = setup.pick?.(ctx.principal) ?? setup;
          const { engine, policy } = chosen;
          const state = dlpState(ctx);
          // Kept for dlp.response (same policy, same pseudonym session) and the audit.
          state.setup = chosen;
          state.policy = policy?.name;
          // Per-token texts (logprobs) repeat a streamed answer in pieces, each released with its
          // chunk before the hold-back has judged the text around it: no stream with them can be
          // checked, so none is started. A whole JSON answer with them is judged at its end.
          if (chosen.options.response && parsed.stream && parsed.tokenDetails !== undefined) {
            ctx.decide({
              stage: 'dlp.request',
              ruleId: TOKEN_DETAILS_RULE,
              effect: 'deny',
              reason: `${parsed.tokenDetails} in a stream whose text is checked`,
            });
            throw refuse(
              'content_blocked',
              `A streamed response with per-token details ('${parsed.tokenDetails}') cannot be checked for sensitive data; ask without them, or without streaming.`,
              { ruleId: TOKEN_DETAILS_RULE, param: parsed.tokenDetails },
            );
          }
          // Token ids (or embeddings) are text the model reads and no scan can: fail closed.
          if (parsed.tokenInput !== undefined) {
            ctx.decide({
              stage: 'dlp.request',
              ruleId: TOKEN_INPUT_RULE,
              effect: 'deny',
              reason: `model input as token ids or embeddings in '${parsed.tokenInput}'`,
            });
            throw refuse(
              'content_blocked',
              `'${parsed.tokenInput}' gives the model token ids or embeddings, which cannot be checked for sensitive data; send text instead.`,
              { ruleId: TOKEN_INPUT_RULE, param: parsed.tokenInput },
            );
          }
          const pool = deps.parsePool;
          if (pool !== undefined && policy !== undefined && canonical.length > INLINE_SCAN_MAX_BYTES) {
            // Off the event loop; the state machine asks Envoy to wait longer for this message.
            ctx.out.slow = true;
            return pool.scanDlp({ policy, from, skipModel: true, keys: true }, canonical, ctx.signal).then(
              (hits) => apply(ctx, canonical, hits, engine),
              (err: unknown) => failed(ctx, err),
            );
          }
          let hits: CollectedHits;
          try {
            hits = collectHits(canonical, from, engine.scanner, {
              skipModel: true,
              budgetMs: options.scanBudgetMs,
              keepTexts: true,
              keys: true,
            });
          } catch (err) {
            return failed(ctx, err);
          }
          apply(ctx, canonical, hits, engine);
        },
      };
    },
  });
}
