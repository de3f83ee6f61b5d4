// The Istio resources we ship, checked offline by the pinned istioctl: `istioctl analyze` (the
// analyzers, no cluster) on envoy/istio/ and on the chart's rendered objects together, and
// `istioctl validate` (the admission webhook's checks, which also unmarshal an EnvoyFilter's
// typed_config). Broken fixtures fail each. (The patches applied to Istio listeners and run through
// envoy --mode validate: deploy-envoy.test.ts.)
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../harness/envoy.ts';
import { ensureGoTool, ISTIOCTL, runTool } from '../harness/go-tool.ts';
import { ensureHelm, PRODUCTION_VALUES, template } from '../harness/helm.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const ISTIO_DIR = join(ROOT, 'envoy', 'istio');
let istioctl: string;
let files: string[];

beforeAll(async () => {
  ({ bin: istioctl } = await ensureGoTool(ISTIOCTL));
  await ensureHelm();
  files = (await readdir(ISTIO_DIR)).filter((f) => f.endsWith('.yaml')).map((f) => join(ISTIO_DIR, f));
}, 45 * 60_000);

const analyze = (paths: string[]) =>
  runTool(istioctl, ['analyze', '--use-kube=false', '--failure-threshold', 'Info', ...paths]);
const validate = (path: string) => runTool(istioctl, ['validate', '-f', path]);

async function broken(file: string, from: string, to: string): Promise<string> {
  const text = await readFile(join(ISTIO_DIR, file), 'utf8');
  expect(text).toContain(from);
  const out = join(await tempDir('lmg-istio-'), file);
  await writeFile(out, text.replaceAll(from, to));
  return out;
}

describe('istioctl analyze (offline)', () => {
  it('finds no issue in envoy/istio/ and the chart`s rendered production objects, analysed together', async () => {
    const rendered = await template({ values: [PRODUCTION_VALUES] });
    // The chart's EnvoyFilter and DestinationRule are the files' twins: analyse one set with the
    // chart's other objects, so a conflict between the chart and the files would show.
    const chartFile = join(await tempDir('lmg-istio-'), 'chart.yaml');
    await writeFile(chartFile, rendered.run.stdout);
    const r = await analyze([...files, chartFile]);
    expect(r.stderr).not.toMatch(/could not be parsed|Error/);
    expect(r.stdout + r.stderr).toContain('No validation issues found');
    expect(r.ok).toBe(true);
    expect(files.length).toBe(4);
  });

  it('fails on a resource outside the Istio API (the check can fail)', async () => {
    const r = await analyze([
      await broken('ext-proc-sidecar.yaml', 'operation: INSERT_BEFORE', 'operation: INSERT_NEARBY'),
    ]);
    expect(r.ok).toBe(false);
    expect(r.stdout + r.stderr).toContain('INSERT_NEARBY');
    const dr = await analyze([await broken('lm-gate-destinationrule.yaml', 'mode: ISTIO_MUTUAL', 'mode: MUTUALISH')]);
    expect(dr.ok).toBe(false);
  });
});

describe('istioctl validate', () => {
  it('accepts every file in envoy/istio/', async () => {
    for (const f of files) {
      const r = await validate(f);
      expect(r.stdout + r.stderr, f).not.toContain('Error');
      expect(r.ok, f).toBe(true);
    }
  });

  it('refuses an EnvoyFilter whose ext_proc typed_config is broken (the check can fail)', async () => {
    const r = await validate(
      await broken('ext-proc-gateway.yaml', 'request_body_mode: BUFFERED', 'request_body_mode: SOMETIMES'),
    );
    expect(r.ok).toBe(false);
    expect(r.stdout + r.stderr).toContain('BodySendMode');
  });
});
