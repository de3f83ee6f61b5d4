// lm-gate audit: the audit trail from a shell.
//
//   lm-gate audit verify [--key PUBLIC.pem] [--partial] FILES…   prove records, chain, checkpoints
//   lm-gate audit query [filters] [--format table|json|csv] FILES…  select records (audit-query.ts)
//   lm-gate audit keygen PRIVATE.pem PUBLIC.pem                   an Ed25519 checkpoint key pair
//
// verify exits 0 when the set holds, 1 naming the first bad line (file:line, seq, why). Capture
// files (audit.capture) may be given among FILES: each capture line is checked against the
// digest its record holds, and a deleted one is reported as erased.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { keyId } from '../audit/checkpoint.ts';
import { totalBytes, verifyFiles } from '../audit/verify.ts';
import { AUDIT_QUERY_USAGE, auditQuery } from './audit-query.ts';
import { parseCommandArgs, UsageError } from './usage.ts';

export const AUDIT_VERIFY = 'lm-gate audit verify [--key PUBLIC.pem] [--partial] FILES…';
export const AUDIT_KEYGEN = 'lm-gate audit keygen PRIVATE.pem PUBLIC.pem';
export const AUDIT_USAGE = [AUDIT_VERIFY, AUDIT_QUERY_USAGE, AUDIT_KEYGEN];

export async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'verify':
      return verify(rest);
    case 'query':
      return auditQuery(rest);
    case 'keygen':
      return keygen(rest);
    default:
      throw new UsageError(
        'lm-gate audit',
        `unknown subcommand ${JSON.stringify(sub ?? '')}; one of verify, query, keygen`,
      );
  }
}

async function verify(args: string[]): Promise<number> {
  const cmd = 'lm-gate audit verify';
  const { values, positionals } = parseCommandArgs(cmd, AUDIT_VERIFY, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      key: { type: 'string', short: 'k' },
      partial: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(`usage: ${AUDIT_VERIFY}`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(cmd, 'FILES are required', AUDIT_VERIFY);
  const publicKey = values.key ? createPublicKey(await readFile(values.key)) : undefined;
  const bar = process.stderr.isTTY ? progressBar(await totalBytes(positionals)) : undefined;
  const report = await verifyFiles(positionals, {
    ...(publicKey ? { publicKey } : {}),
    ...(values.partial ? { partial: true } : {}),
    ...(bar ? { onProgress: bar.update } : {}),
  });
  bar?.done();
  const p = report.problem;
  if (p) {
    console.log(`FAIL ${p.file}:${p.line}${p.seq === null ? '' : ` (seq ${p.seq})`}: ${p.reason}`);
    return 1;
  }
  const kid = publicKey ? ` by key ${await keyId(publicKey)}` : '';
  console.log(
    `ok: ${report.files} file(s), ${report.lines} lines, ${report.records} records, ${report.checkpoints} checkpoints (${report.signed} signature(s) checked${kid}), ${report.breaks.length} break(s)`,
  );
  const c = report.captures;
  if (c.files > 0 || c.erased > 0)
    console.log(
      `captures: ${c.files} file(s), ${c.matched} line(s) match their records, ${c.erased} erased (not in the set)${c.unlinked > 0 ? `, ${c.unlinked} linked by no record` : ''}`,
    );
  if (report.summaries > 0)
    console.log(
      `refusal summaries: ${report.summaries} line(s) count ${report.summarised} refused request(s) (503 audit_unavailable) the sink could not record one by one`,
    );
  for (const b of report.breaks)
    console.log(
      `break: ${b.file}:${b.line} (seq ${b.seq}): the writer stopped without a shutdown checkpoint before this`,
    );
  for (const n of report.notes) console.log(`note: ${n}`);
  return 0;
}

/** A one-line bar on stderr (a TTY only): redrawn at most every 100 ms by verifyFiles. */
function progressBar(total: number) {
  const width = 30;
  const draw = (bytes: number) => {
    const f = total > 0 ? Math.min(1, bytes / total) : 1;
    const n = Math.round(f * width);
    process.stderr.write(
      `\r[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(f * 100).toFixed(0).padStart(3)}% of ${(total / 1e6).toFixed(1)} MB`,
    );
  };
  return {
    update: draw,
    done: () => {
      draw(total);
      process.stderr.write('\n');
    },
  };
}

async function keygen(args: string[]): Promise<number> {
  const cmd = 'lm-gate audit keygen';
  const { positionals } = parseCommandArgs(cmd, AUDIT_KEYGEN, { args, allowPositionals: true, options: {} });
  if (positionals.length !== 2) throw new UsageError(cmd, 'PRIVATE.pem and PUBLIC.pem are required', AUDIT_KEYGEN);
  const [priv, pub] = positionals as [string, string];
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // wx: never overwrite a key that may already sign a chain.
  await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }), { flag: 'wx' });
  console.log(
    `${priv}: private key (audit.signingKey); ${pub}: public key (audit verify --key); kid ${await keyId(publicKey)}`,
  );
  return 0;
}
