// The harness picks free ports for Envoy's listener and admin, and another process can take
// one before Envoy binds it (CI lost a run to exactly that). startEnvoy then picks again.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bindConflict, renderEnvoyConfig, startEnvoy } from '../harness/envoy.ts';
import { freePort, reservePort } from '../harness/ports.ts';
import { tempDir } from '../harness/temp-dirs.ts';
import { type MockModel, startMockModel } from '../mock/model-server.ts';

let mock: MockModel;
let squatter: Server;
let taken: number;
beforeAll(async () => {
  mock = await startMockModel({});
  // Holds the port and hangs up on whoever connects (Envoy's readiness probe included).
  squatter = createServer((socket) => socket.destroy());
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  taken = (squatter.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => squatter.close(r));
  await mock.close();
});

it('hands out distinct ports below the ephemeral range, where no outgoing connection can take them', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports = [];
  for (let i = 0; i < 20; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(20);
  if (low - 11_000 >= 16 * 256) for (const p of ports) expect(p).toBeLessThan(low);
});

it('never hands out a reserved port, the one a process was told to bind itself', async () => {
  // The counter moves one port at a time, so the port after each one handed out is the next
  // candidate: reserved, it must be stepped over.
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    reservePort(p + 1);
    expect(await freePort()).not.toBe(p + 1);
  }
});

it('reads the port Envoy could not bind from its error', () => {
  const line = "[critical][main] error `cannot bind '127.0.0.1:37197': Address already in use` initializing config";
  expect(bindConflict(line)).toBe(37197);
  expect(bindConflict('listener failed: Permission denied')).toBeUndefined();
});

for (const which of ['listener', 'admin'] as const) {
  it(`starts Envoy on a fresh ${which} port when the chosen one is taken before Envoy binds it`, async () => {
    const ports = { listener: await freePort(), admin: await freePort(), gate: await freePort(), model: mock.port };
    ports[which] = taken;
    const dir = await tempDir('lm-gate-envoy-');
    const envoy = await startEnvoy(await renderEnvoyConfig(ports, join(dir, 'envoy.yaml')), ports);
    try {
      expect(envoy.ports[which]).not.toBe(taken);
      expect((await fetch(`http://127.0.0.1:${envoy.ports.admin}/ready`)).status).toBe(200);
      // The listener answers on the port the Envoy object reports (the gate is absent: 500/503).
      const r = await fetch(`${envoy.url}/healthz-not-routed`);
      expect(r.status).toBeGreaterThanOrEqual(400);
    } finally {
      await envoy.stop();
    }
  });
}
