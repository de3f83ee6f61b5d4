import { describe, expect, it } from 'vitest';
import { configFields } from './json-schema.ts';
import { parseConfig } from './load.ts';
import { RESTART_ONLY, restartRequired } from './restart.ts';

const cfg = (yaml: string) => parseConfig(yaml, 'x', {});

describe('restartRequired', () => {
  const table: [string, string, string, string[]][] = [
    ['nothing changed', '', '', []],
    [
      'keys and limits reload live',
      '',
      'server: { messageDeadlineMs: 100, maxRequestBodyBytes: 10 }\nlogging: { level: debug }',
      [],
    ],
    ['a new gRPC address', '', 'server: { grpcAddress: "0.0.0.0:6000" }', ['server.grpcAddress']],
    ['a Unix socket added', '', 'server: { unixSocket: /tmp/x.sock }', ['server.unixSocket']],
    [
      'audit file and admin port',
      '',
      'server: { adminAddress: "127.0.0.1:1" }\naudit: { path: /var/log/a.log }',
      ['server.adminAddress', 'audit.path'],
    ],
    [
      'capture rules reload live; the capture file does not',
      '',
      'audit: { capture: { path: /var/log/c.log, rules: [{ id: all }] } }',
      ['audit.capture.path'],
    ],
  ];
  for (const [name, a, b, want] of table) it(name, () => expect(restartRequired(cfg(a), cfg(b))).toEqual(want));
});

describe('the config reference', () => {
  it('says of exactly the restart-only fields that they take effect at the next restart', () => {
    const says = configFields()
      .filter((f) => f.schema.description?.includes('Takes effect at the next restart.'))
      .map((f) => f.path);
    const restartOnly = Object.entries(RESTART_ONLY).flatMap(([name, fields]) => fields.map((f) => `${name}.${f}`));
    expect(says.sort()).toEqual(restartOnly.sort());
  });
});
