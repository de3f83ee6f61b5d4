// Builds the pinned deployment tools the deploy tests run (helm, egctl, istioctl; see
// test/harness/go-tool.ts), once each, into .cache/: `.ci/run` calls it before the suites so no
// test hook waits for a Go build. istioctl is by far the largest (many minutes cold on 2 cores).
//   sh scripts/dev.sh node scripts/deploy-tools.ts
import { DEPLOY_TOOLS, ensureGoTool } from '../test/harness/go-tool.ts';

for (const tool of DEPLOY_TOOLS) {
  const build = await ensureGoTool(tool, (m) => console.error(`[${tool.name}] ${m}`));
  console.log(
    `${tool.name} ${tool.version}: ${build.bin}${build.buildS === null ? '' : ` (${build.cached ? 'cached; built' : 'built'} in ${build.buildS} s)`}`,
  );
}
