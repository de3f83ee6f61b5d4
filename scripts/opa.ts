// Builds the pinned OPA the policy.opa integration test runs (test/harness/opa.ts), once, into
// .cache/: `.ci/run` calls it before the suites so no test hook waits for a Go build.
//   sh scripts/dev.sh node scripts/opa.ts
import { ensureOpa, OPA_VERSION } from '../test/harness/opa.ts';

const build = await ensureOpa((m) => console.error(`[opa] ${m}`));
console.log(
  `opa ${OPA_VERSION}: ${build.bin}${build.buildS === null ? '' : ` (${build.cached ? 'cached; built' : 'built'} in ${build.buildS} s)`}`,
);
