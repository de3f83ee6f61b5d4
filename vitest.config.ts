import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// The gates, CLIs and config loader processes the tests start run the TypeScript sources
// (`node extproc/main.ts`, type-stripped), and every loader strips and compiles the config
// modules anew: a hot reload's check took ~0.45 s instead of the compiled gate's ~0.25 s, and a
// keys file revocation across replicas (test/e2e/kill-switch.test.ts, bound 1 s) read 0.54-1.12
// s on a loaded host. Node's compile cache keeps both the stripped sources and V8's code, each
// entry checked against its source's hash: 0.35-0.49 s then (0.24-0.26 s once the loader started
// at the change event). Children inherit it.
process.env.NODE_COMPILE_CACHE ??= join(import.meta.dirname, '.cache', 'node-compile-cache');

// Four suites that can run alone (npm run test:unit | test:integration | test:e2e | test:bench) or together
// (npm test). Unit tests live beside the module they prove; integration and e2e under test/.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['extproc/**/*.test.ts', 'test/mock/**/*.test.ts', 'scripts/**/*.test.ts', 'bench/lib/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/harness/cleanup.ts'],
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          setupFiles: ['test/harness/cleanup.ts'],
          testTimeout: 60_000,
          hookTimeout: 90_000,
          // Each e2e file starts its own Envoy, gate and mock; two cores run two at once.
          maxWorkers: 2,
        },
      },
      {
        test: {
          // The e2e files that carry requests with bodies through every kind of stage (policy,
          // routing from the body, DLP rewriting both ways, metering, the official client), again
          // with the gate's filter in FULL_DUPLEX_STREAMED request mode (README "Envoy filter
          // modes"; test/harness/envoy.ts fullDuplexFromEnv).
          name: 'e2e-duplex',
          include: [
            'test/e2e/openai-client.test.ts',
            'test/e2e/routing.test.ts',
            'test/e2e/dlp.test.ts',
            'test/e2e/metering.test.ts',
            'test/e2e/policy-rules.test.ts',
            'test/e2e/hardening-body.test.ts',
            'test/e2e/hardening-envoy-replies.test.ts',
            'test/e2e/hardening-response.test.ts',
            'test/e2e/stream-close.test.ts',
            'test/e2e/stream-error-event.test.ts',
            'test/e2e/identity-attacks.test.ts',
            'test/e2e/injection.test.ts',
            'test/e2e/tgi.test.ts',
          ],
          env: { LMG_E2E_FULL_DUPLEX: '1' },
          setupFiles: ['test/harness/cleanup.ts'],
          testTimeout: 60_000,
          hookTimeout: 90_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          // `npm run bench:smoke` inside `npm test`: the harness works end to end and writes a
          // well-formed result. Never a latency threshold.
          name: 'bench',
          include: ['bench/*.test.ts'],
          testTimeout: 300_000,
        },
      },
    ],
  },
});
