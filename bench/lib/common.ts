// What every bench script shares: the requests they send, the run's provenance (command line,
// commit), and the small reductions over vegeta samples and Envoy's stats.
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';
import { envoyVersion, ROOT } from '../../test/harness/envoy.ts';
import type { RunEnvironment } from './result.ts';
import { mapValues, type Percentiles, percentiles, roundMs } from './stats.ts';
import { type Sample, type Target, VEGETA_VERSION } from './vegeta.ts';

/** The non-streaming chat completion every open-loop and saturation request sends (223 bytes). */
export const CHAT = Buffer.from(
  JSON.stringify({
    model: 'mock-small',
    messages: [
      { role: 'system', content: 'You are a concise assistant.' },
      { role: 'user', content: 'Summarise the benefits of an API gateway in front of a model server in one sentence.' },
    ],
    max_tokens: 64,
  }),
);

/** The DLP profile's prompt: 16 KB of prose with an e-mail address and a card number every
 * ~2 KB (16 findings), the kind of pasted ticket DLP exists for. */
export const DLP_CHAT = (() => {
  const prose =
    'The customer wrote in again about the delayed refund; the order shipped late and the tracking page still shows it in transit. ';
  let text = '';
  for (let i = 0; text.length < 16 * 1024 - 400; i++) {
    text += prose.repeat(7);
    text += i % 2 === 0 ? `Reach them at customer${i}@example.com. ` : 'Their card on file is 4111 1111 1111 1111. ';
  }
  return Buffer.from(
    JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: text }], max_tokens: 64 }),
  );
})();

/** The DLP profile's streamed reply (x-mock-content): PII spread over the deltas, so findings
 * straddle chunk borders and the hold-back works. */
export const DLP_REPLY = Array.from(
  { length: 20 },
  (_, i) => `Line ${i}: write to agent${i}@example.org or call about card 4111 1111 1111 1111 today. `,
).join('');

/** The streamed request. The client asks for usage itself, so every route streams the same bytes
 * (no gateway adds stream_options.include_usage to what it forwards). It sets max_tokens, as the
 * profiles' no-long-generations rule asks (a request that sets none counts as unbounded). */
export const STREAM_CHAT = JSON.stringify({
  model: 'mock-small',
  stream: true,
  stream_options: { include_usage: true },
  max_tokens: 512,
  messages: [{ role: 'user', content: 'Write a short story about a lighthouse keeper.' }],
});

/** How this run was started, for the report: `npm run <script> -- <args>` or `node <script>`. */
export function commandLine(script: string, opts: { dropArgs?: boolean } = {}): string {
  const npmScript = process.env.npm_lifecycle_event;
  const args = process.argv.slice(2).join(' ');
  if (npmScript) return `npm run ${npmScript}${args && !opts.dropArgs ? ` -- ${args}` : ''}`;
  return `node ${script}${args ? ` ${args}` : ''}`;
}

/** The short commit, with +dirty when tracked files differ from it. */
export function gitCommit(): string {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '+dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** One counter from Envoy's /stats text output, 0 when absent. */
export function envoyStat(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Percentiles of the successful samples' latency. */
export function latencies(samples: Sample[]): Percentiles {
  return percentiles(samples.filter((s) => s.ok).map((s) => s.ms));
}

export function roundedPercentiles(p: Percentiles): Percentiles {
  return mapValues(p, roundMs);
}

/** Failed samples by error. */
export function errorsOf(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (!s.ok) out[s.error ?? 'failed'] = (out[s.error ?? 'failed'] ?? 0) + 1;
  return out;
}

/** The bench's non-streaming chat request (CHAT) to one route of a bench Envoy, with the key. */
export function chatTarget(
  envoy: { url(route: string): string },
  route: string,
  key: string,
  body: Buffer = CHAT,
): Target {
  return {
    name: route,
    url: `${envoy.url(route)}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body,
  };
}

/** The machine and tools a bench ran on, as every result records them. */
export function runEnvironment(envoyConcurrency: number): RunEnvironment {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    envoy: envoyVersion().replace(/^.*version:\s*/, ''),
    vegeta: `v${VEGETA_VERSION}`,
    envoyConcurrency,
  };
}
