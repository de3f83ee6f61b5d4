import { defineConfig } from 'vitest/config';

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
