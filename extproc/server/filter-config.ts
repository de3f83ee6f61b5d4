// Envoy's ext_proc filter settings as the gate sees them (ProcessingRequest.protocol_config), and
// the ones it cannot work with. Envoy silently ignores the gate's mode_override under some
// settings and never sends request bodies under others; without this check such a config shows
// up only as requests audited 'cancelled' with no usage, or refused one by one. Each problem is
// logged once, counted in lmgate_envoy_filter_config_problems, and listed by /readyz.
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { BodySendMode, type ProtocolConfig } from './protocol.ts';

export type RequestBodyMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED';

const MODE_NAMES: Record<number, RequestBodyMode> = {
  [BodySendMode.NONE]: 'NONE',
  [BodySendMode.STREAMED]: 'STREAMED',
  [BodySendMode.BUFFERED]: 'BUFFERED',
  [BodySendMode.BUFFERED_PARTIAL]: 'BUFFERED_PARTIAL',
  [BodySendMode.FULL_DUPLEX_STREAMED]: 'FULL_DUPLEX_STREAMED',
};

export function bodyModeName(mode: number | undefined): RequestBodyMode {
  return MODE_NAMES[mode ?? 0] ?? 'NONE';
}

/** Problems, by metric label, with what to change. */
const PROBLEMS = {
  request_body_none:
    'request_body_mode is NONE: the gate never sees request bodies, so it refuses every LLM request that has one. Set request_body_mode: BUFFERED.',
  request_body_full_duplex:
    'request_body_mode is FULL_DUPLEX_STREAMED but response_body_mode is not STREAMED: Envoy ignores the gate\'s mode_override in this mode, so responses are not metered. Set response_body_mode: STREAMED and response_trailer_mode: SEND (README "Envoy filter modes").',
  response_body_full_duplex:
    "response_body_mode is FULL_DUPLEX_STREAMED: Envoy ignores the gate's mode_override, so responses are not metered. Set response_body_mode: NONE with allow_mode_override: true.",
  send_body_without_waiting:
    "send_body_without_waiting_for_header_response is true: Envoy ignores the gate's mode_override, so responses are not metered. Remove it.",
} as const;
export type FilterConfigProblem = keyof typeof PROBLEMS;

export class FilterConfigWatch {
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly seen = new Set<FilterConfigProblem>();
  /** The last protocol_config checked, as a key: checking is skipped while it is unchanged. */
  private lastKey = -1;

  constructor(logger: Logger, metrics: Metrics) {
    this.logger = logger;
    this.metrics = metrics;
  }

  /** Called with every stream's protocol_config; cheap when it is the same as the last one. */
  check(pc: ProtocolConfig): void {
    const req = pc.requestBodyMode ?? 0;
    const res = pc.responseBodyMode ?? 0;
    const key = req * 16 + res * 2 + (pc.sendBodyWithoutWaitingForHeaderResponse ? 1 : 0);
    if (key === this.lastKey) return;
    this.lastKey = key;
    if (req === BodySendMode.NONE) this.report('request_body_none');
    if (req === BodySendMode.FULL_DUPLEX_STREAMED && res !== BodySendMode.STREAMED)
      this.report('request_body_full_duplex');
    if (res === BodySendMode.FULL_DUPLEX_STREAMED) this.report('response_body_full_duplex');
    if (pc.sendBodyWithoutWaitingForHeaderResponse) this.report('send_body_without_waiting');
  }

  report(problem: FilterConfigProblem): void {
    if (this.seen.has(problem)) return;
    this.seen.add(problem);
    this.metrics.filterConfigProblems.labels(problem).set(1);
    this.logger.error({ problem }, `Envoy ext_proc filter config: ${PROBLEMS[problem]}`);
  }

  /** For /readyz: every problem seen since start. */
  get problems(): string[] {
    return [...this.seen].map((p) => `${p}: ${PROBLEMS[p]}`);
  }
}
