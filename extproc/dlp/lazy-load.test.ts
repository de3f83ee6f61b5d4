// re2js and libphonenumber-js are loaded when a config's DLP needs them, not by importing the
// gate: a gate without DLP keeps their code and metadata (~3 MiB of heap) out (README "Levers
// tried"). libphonenumber-js comes with the first scan (the DLP stages' warm-up at config load),
// re2js with the first custom pattern.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lastLineInFreshProcess } from '../../test/harness/fresh-process.ts';

const server = fileURLToPath(new URL('../server/grpc-server.ts', import.meta.url));
const load = fileURLToPath(new URL('../config/load.ts', import.meta.url));
const engine = fileURLToPath(new URL('./gate/engine.ts', import.meta.url));

/** In a fresh process: import the gate's server, parse `yaml` and build its DLP setup as the
 * DLP stages' create() does, and say which of the two libraries any module load (import or
 * require) came from. */
async function librariesLoaded(yaml: string): Promise<{ re2js: boolean; libphonenumber: boolean }> {
  const line = await lastLineInFreshProcess(`
    await import(${JSON.stringify(server)});
    const { parseConfig } = await import(${JSON.stringify(load)});
    const { dlpSetup } = await import(${JSON.stringify(engine)});
    dlpSetup(parseConfig(${JSON.stringify(yaml)}, 'test.yaml', {}));
    console.log(JSON.stringify({
      re2js: loaded('re2js'),
      libphonenumber: loaded('libphonenumber-js'),
    }));`);
  return JSON.parse(line) as { re2js: boolean; libphonenumber: boolean };
}

describe('DLP library loading', () => {
  it('loads neither library for a config without DLP', async () => {
    expect(await librariesLoaded('{}')).toEqual({ re2js: false, libphonenumber: false });
  }, 60_000);

  it('loads libphonenumber-js when DLP inspects, and re2js only for a custom pattern', async () => {
    expect(await librariesLoaded('dlp: { inspect: request }')).toEqual({ re2js: false, libphonenumber: true });
    const withPattern =
      "dlp: { inspect: request, policies: [{ name: default, patterns: [{ name: PROJECT_CODE, regex: 'PRJ-[0-9]{4}' }] }] }";
    expect(await librariesLoaded(withPattern)).toEqual({ re2js: true, libphonenumber: true });
  }, 60_000);

  it('checks a custom pattern at config load without DLP inspecting', async () => {
    const pattern = "dlp: { policies: [{ name: default, patterns: [{ name: PROJECT_CODE, regex: 'PRJ-[0-9]{4}' }] }] }";
    expect(await librariesLoaded(pattern)).toEqual({ re2js: true, libphonenumber: false });
  }, 60_000);
});
