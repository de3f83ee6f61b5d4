// The whole path for e2e tests and the quickstart: mock model server + LM Gate + real Envoy,
// each on free ports, torn down together.
import { join } from 'node:path';
import { type MockModel, type MockOptions, startMockModel } from '../mock/model-server.ts';
import {
  type Envoy,
  type EnvoyPorts,
  fullDuplexFromEnv,
  gateWorkerEndpoints,
  renderEnvoyConfig,
  startEnvoy,
} from './envoy.ts';
import { type Gate, startGate, type TestKey } from './gate.ts';
import { freePort } from './ports.ts';
import { tempDir } from './temp-dirs.ts';

export interface Stack {
  mock: MockModel;
  /** The model_hipaa cluster's server, when startStack was asked for one (largeMock). */
  mockLarge: MockModel | undefined;
  gate: Gate;
  envoy: Envoy;
  /** Base URL for OpenAI clients: http://127.0.0.1:PORT/v1 */
  baseURL: string;
  stop(): Promise<void>;
}

export async function startStack(opts: {
  keys: TestKey[];
  mock?: MockOptions;
  /** Start a second mock model server for Envoy's model_hipaa cluster (the "hipaa" route). */
  largeMock?: boolean;
  unixSocket?: boolean;
  /** Gate workers (server.workers): Envoy's lm_gate cluster gets one endpoint per worker. */
  workers?: number;
  gateExtra?: Record<string, unknown>;
  editEnvoy?: (cfg: Record<string, any>) => void;
  /** The shipped bootstrap to start from, under envoy/ (default envoy.yaml). */
  envoyBase?: string;
}): Promise<Stack> {
  const mock = await startMockModel(opts.mock ?? {});
  const mockLarge = opts.largeMock ? await startMockModel(opts.mock ?? {}) : undefined;
  let gate: Gate | undefined;
  try {
    gate = await startGate(opts.keys, {
      ...(opts.unixSocket ? { unixSocket: true } : {}),
      ...(opts.workers ? { workers: opts.workers } : {}),
      ...(opts.gateExtra ? { extra: opts.gateExtra } : {}),
    });
    const ports: EnvoyPorts = {
      listener: await freePort(),
      admin: await freePort(),
      gate: gate.grpcPort,
      model: mock.port,
      ...(mockLarge ? { modelLarge: mockLarge.port } : {}),
      ...(opts.unixSocket ? { gateSocket: join(gate.dir, 'gate.sock') } : {}),
    };
    const dir = await tempDir('lm-gate-envoy-');
    const workers = opts.workers ?? 1;
    const edit = (cfg: Record<string, any>) => {
      if (workers > 1) gateWorkerEndpoints(cfg, gate!.grpcPort, workers);
      fullDuplexFromEnv(cfg);
      opts.editEnvoy?.(cfg);
    };
    const envoy = await startEnvoy(
      await renderEnvoyConfig(ports, join(dir, 'envoy.yaml'), edit, opts.envoyBase),
      ports,
    );
    const g = gate;
    return {
      mock,
      mockLarge,
      gate: g,
      envoy,
      baseURL: `${envoy.url}/v1`,
      async stop() {
        await envoy.stop();
        await g.stop();
        await mock.close();
        await mockLarge?.close();
      },
    };
  } catch (err) {
    await gate?.stop('SIGKILL');
    await mock.close();
    await mockLarge?.close();
    throw err;
  }
}
