// What a fresh Node process loads: for the tests that prove a library stays out of a gate whose
// config does not use it (README "Levers tried"). The process starts empty, so nothing the test
// runner or an earlier test imported can hide or fake a load.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `body` as an ES module in a fresh Node process and returns the last line it printed.
 * Before `body`, a module load hook records every module's URL (imported or required), and
 * `loaded(pkg)` says whether any came from node_modules/<pkg>/. */
export async function lastLineInFreshProcess(body: string): Promise<string> {
  const script = `
    import { registerHooks } from 'node:module';
    const urls = [];
    registerHooks({ load(url, context, next) { urls.push(url); return next(url, context); } });
    const loaded = (pkg) => urls.some((u) => u.includes('/node_modules/' + pkg + '/'));
    ${body}`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
  return stdout.trim().split('\n').at(-1) ?? '';
}
