// A real Open Policy Agent server for the policy.opa tests, built from its Go module at the
// version pinned in scripts/toolchain.env by go-tool.ts (go.sum-checked download, `go build
// -mod=readonly`, cached in .cache/opa-<version>/): a fresh clone builds it once (a minute or two
// on two cores); `.ci/run` builds it before the suites (scripts/opa.ts) so no test hook pays.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureGoTool, type GoTool, type GoToolBuild } from './go-tool.ts';
import { freePort, waitFor } from './ports.ts';
import { Proc } from './processes.ts';
import { toolchain } from './toolchain.ts';

export const OPA_MODULE = 'github.com/open-policy-agent/opa';
export const OPA_VERSION = `v${toolchain().OPA_VERSION ?? '1.22.2'}`;

/** Built like the deploy tools (go-tool.ts): the module root is OPA's command. */
export const OPA: GoTool = {
  name: 'opa',
  module: OPA_MODULE,
  pkg: '.',
  version: OPA_VERSION,
  sum: toolchain().OPA_SUM,
  env: 'OPA_BIN',
};

export type OpaBuild = GoToolBuild;

/** OPA_BIN, else the pinned version in .cache/opa-<version>/, built there on first use. */
export function ensureOpa(log: (m: string) => void = () => {}): Promise<OpaBuild> {
  return ensureGoTool(OPA, log);
}

export class Opa {
  readonly proc: Proc;
  readonly port: number;
  constructor(proc: Proc, port: number) {
    this.proc = proc;
    this.port = port;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM');
  }
}

/** `opa run --server` on a free loopback port with the given Rego modules (file name → text),
 * ready once its health endpoint answers. */
export async function startOpa(policies: Record<string, string>, workDir: string): Promise<Opa> {
  const { bin } = await ensureOpa();
  const files: string[] = [];
  for (const [name, text] of Object.entries(policies)) {
    const f = join(workDir, name);
    await writeFile(f, text);
    files.push(f);
  }
  const port = await freePort();
  const proc = new Proc('opa', bin, [
    'run',
    '--server',
    '--addr',
    `127.0.0.1:${port}`,
    '--log-level',
    'error',
    '--disable-telemetry',
    ...files,
  ]);
  await waitFor('opa ready', async () => {
    if (!proc.running) throw new Error(`opa exited\n${proc.describe()}`);
    const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    return res?.ok ? true : undefined;
  });
  return new Opa(proc, port);
}
