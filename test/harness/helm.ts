// The pinned helm (test/harness/go-tool.ts) run on charts/lm-gate: lint and template, with its
// config, cache and data homes in a scratch folder so nothing of the user's helm setup leaks in.
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './envoy.ts';
import { ensureGoTool, HELM, runTool, type ToolRun } from './go-tool.ts';
import { tempDir } from './temp-dirs.ts';

export const CHART = join(ROOT, 'charts', 'lm-gate');
export const PRODUCTION_VALUES = join(CHART, 'ci', 'production-values.yaml');
/** helm template defaults to Kubernetes 1.20; the chart needs 1.30 (preStop sleep). */
export const KUBE_VERSION = '1.33.0';

export type K8sObject = Record<string, any> & { kind: string; metadata: { name: string; namespace?: string } };

let helmBin: string | undefined;
let helmHome: string | undefined;

/** Builds helm if .cache/ lacks it; call from a beforeAll with a long timeout. */
export async function ensureHelm(): Promise<string> {
  helmBin ??= (await ensureGoTool(HELM)).bin;
  helmHome ??= await tempDir('lmg-helm-home-');
  return helmBin;
}

export async function helm(args: string[]): Promise<ToolRun> {
  const bin = await ensureHelm();
  const home = helmHome as string;
  return runTool(bin, args, {
    env: {
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
    },
  });
}

export interface Rendered {
  run: ToolRun;
  objects: K8sObject[];
  find(kind: string, name?: string): K8sObject;
}

/** `helm template lm-gate CHART -n lm-gate` with values files and --set pairs. */
export async function template(
  opts: { values?: string[]; set?: string[]; chart?: string; release?: string } = {},
): Promise<Rendered> {
  const args = [
    'template',
    opts.release ?? 'lm-gate',
    opts.chart ?? CHART,
    '-n',
    'lm-gate',
    '--kube-version',
    KUBE_VERSION,
  ];
  for (const v of opts.values ?? []) args.push('-f', v);
  for (const s of opts.set ?? []) args.push('--set', s);
  const run = await helm(args);
  const objects = run.ok
    ? parseAllDocuments(run.stdout)
        .map((d) => d.toJSON() as K8sObject | null)
        .filter((o): o is K8sObject => o !== null)
    : [];
  return {
    run,
    objects,
    find(kind, name) {
      const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
      if (!o) throw new Error(`rendered chart has no ${kind}${name ? ` ${name}` : ''}`);
      return o;
    },
  };
}
