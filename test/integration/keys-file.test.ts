// The keys file against the gate as operators run it (its own process, `lm-gate serve`), edited
// with the CLI as operators edit it: a key `keys create` adds is accepted, and a key `keys revoke`
// disables is refused, within a second, with no restart; an invalid keys file is rejected while
// the old keys keep serving; a Kubernetes Secret's ..data symlink swap is picked up; and with
// gate workers every worker sees the same keys.
import { execFile } from 'node:child_process';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../harness/envoy.ts';
import { ExtProcClient, requestHeaders, responseHeaders } from '../harness/ext-proc-client.ts';
import { type Gate, startGate } from '../harness/gate.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const run = promisify(execFile);

/** `lm-gate keys ...` through the package's bin; stdout is the key for create and rotate. */
async function lmGateKeys(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'bin', 'lm-gate.js'), 'keys', ...args]);
  return stdout.trim();
}

let gate: Gate | undefined;
const clients: ExtProcClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await gate?.stop();
  gate = undefined;
});

/** What the gate does with a request presenting `key`, on the gRPC port `port`: 'admitted',
 * or the status of its refusal. */
async function verdict(port: number, key: string): Promise<'admitted' | number> {
  const client = new ExtProcClient(`127.0.0.1:${port}`);
  clients.push(client);
  const s = client.open();
  const a = await s.exchange(
    requestHeaders(
      {
        ':method': 'GET',
        ':path': '/v1/models',
        ':authority': 'llm.local',
        ':scheme': 'http',
        authorization: `Bearer ${key}`,
      },
      true,
    ),
  );
  if (a.immediateResponse) {
    s.end();
    return a.immediateResponse.status.code;
  }
  await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }, true));
  s.end();
  return 'admitted';
}

/** Milliseconds until `verdict` on every port is `want`; fails after 5 s. */
async function msUntil(ports: number[], key: string, want: 'admitted' | number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const all = await Promise.all(ports.map((p) => verdict(p, key)));
    if (all.every((v) => v === want)) return performance.now() - t0;
    if (performance.now() - t0 > 5000) throw new Error(`still ${all.join(', ')} after 5 s, want ${want}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('keys file, hot', () => {
  it('keys create and keys revoke take effect on the running gate within a second; an invalid file changes nothing', async () => {
    const dir = await tempDir('lmg-keys-file-');
    const keysFile = join(dir, 'keys.yaml');
    const alice = await lmGateKeys('create', '--file', keysFile, '--id', 'alice', '--tenant', 'acme');
    gate = await startGate([], { keysFile });
    const port = gate.grpcPort;
    expect(await verdict(port, alice)).toBe('admitted');

    const bob = await lmGateKeys('create', '--file', keysFile, '--id', 'bob', '--tenant', 'acme');
    expect(await msUntil([port], bob, 'admitted')).toBeLessThan(1000);

    await lmGateKeys('revoke', '--file', keysFile, 'alice');
    expect(await msUntil([port], alice, 401)).toBeLessThan(1000);
    expect(await verdict(port, bob)).toBe('admitted');

    // A keys file the gate cannot use: rejected, logged naming the file and the field, counted;
    // bob still gets in and alice still does not.
    await writeFile(keysFile, 'keys:\n  - { id: mallory, sha256: not-a-hash, tenant: acme }\n');
    await waitForLog(gate, 'config reload rejected');
    expect(gate.proc.stderr).toContain(`${keysFile}: invalid keys file`);
    expect(gate.proc.stderr).toContain('keys[0].sha256');
    expect([await verdict(port, bob), await verdict(port, alice)]).toEqual(['admitted', 401]);
    expect(await gate.metrics()).toMatch(/lmgate_config_reloads_total\{result="rejected"\} 1/);

    // Repaired by the next edit: the CLI refuses to edit an invalid file, so the operator
    // rewrites it; then rotation works on the running gate too.
    await writeFile(keysFile, 'keys: []\n');
    const carol = await lmGateKeys('create', '--file', keysFile, '--id', 'carol', '--tenant', 'acme');
    expect(await msUntil([port], carol, 'admitted')).toBeLessThan(1000);
    expect(await verdict(port, bob)).toBe(401);
    const carol2 = await lmGateKeys('rotate', '--file', keysFile, 'carol');
    expect(await msUntil([port], carol, 401)).toBeLessThan(1000);
    expect(await verdict(port, carol2)).toBe('admitted');

    // Every request left its audit record; none holds a key.
    const audit = JSON.stringify(await gate.audit());
    for (const key of [alice, bob, carol, carol2]) expect(audit).not.toContain(key.slice(-43));
  });

  it('a Kubernetes Secret volume update (the ..data symlink swapped) is picked up', async () => {
    const dir = await tempDir('lmg-keys-secret-');
    const mount = join(dir, 'secret');
    // What the kubelet writes: ..<timestamp>/keys.yaml, ..data -> ..<timestamp>, keys.yaml -> ..data/keys.yaml.
    await mkdir(join(mount, '..v1'), { recursive: true });
    const v1 = await lmGateKeys('create', '--file', join(mount, '..v1', 'keys.yaml'), '--id', 'v1', '--tenant', 'acme');
    await symlink('..v1', join(mount, '..data'));
    await symlink('..data/keys.yaml', join(mount, 'keys.yaml'));
    gate = await startGate([], { keysFile: join(mount, 'keys.yaml') });
    expect(await verdict(gate.grpcPort, v1)).toBe('admitted');

    await mkdir(join(mount, '..v2'));
    const v2 = await lmGateKeys('create', '--file', join(mount, '..v2', 'keys.yaml'), '--id', 'v2', '--tenant', 'acme');
    await symlink('..v2', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    expect(await msUntil([gate.grpcPort], v2, 'admitted')).toBeLessThan(1000);
    expect(await verdict(gate.grpcPort, v1)).toBe(401);
  });

  it('with gate workers, a key added to the file is accepted by every worker', async () => {
    const dir = await tempDir('lmg-keys-workers-');
    const keysFile = join(dir, 'keys.json');
    await writeFile(keysFile, '{"keys": []}\n');
    gate = await startGate([], { keysFile, workers: 2 });
    const ports = [gate.grpcPort, gate.grpcPort + 1];
    const dave = await lmGateKeys('create', '--file', keysFile, '--id', 'dave', '--tenant', 'acme');
    expect(await msUntil(ports, dave, 'admitted')).toBeLessThan(1000);
    await lmGateKeys('revoke', '--file', keysFile, 'dave');
    expect(await msUntil(ports, dave, 401)).toBeLessThan(1000);
  });
});

async function waitForLog(g: Gate, text: string): Promise<void> {
  const t0 = Date.now();
  while (!g.proc.stderr.includes(text)) {
    if (Date.now() - t0 > 5000) throw new Error(`no "${text}" in the gate's log after 5 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
