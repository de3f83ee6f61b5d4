// Checkpoints: lines of the audit stream that commit to everything before them. A checkpoint is
// a chain line (chain.ts) whose own fields say when, why, how many request records it closes,
// and the hash of the previous checkpoint line; its `jws` field is a compact JWS (EdDSA,
// Ed25519) whose payload is the exact bytes of the line without the jws field:
//
//   payload = line.slice(0, line.lastIndexOf(',"jws":')) + '}'
//
// Its `prev` commits to every earlier line, so a signed checkpoint proves the whole chain up
// to it: rewriting records and re-hashing the chain needs the private key.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Chain } from './chain.ts';

/** jose, imported by the first signer, key id or signature check (all asynchronous), not by
 * every gate's audit sink: most gates sign no checkpoints (README "Levers tried"). */
const jose = () => import('jose');

export type CheckpointReason = 'count' | 'interval' | 'rotate' | 'open' | 'start' | 'shutdown';

export interface CheckpointFacts {
  time: string;
  reason: CheckpointReason;
  /** The file this line is in (base name). */
  file: string;
  /** Request lines since the previous checkpoint. */
  records: number;
  /** SHA-256 of the previous checkpoint line, or null for the chain's first. */
  prev_checkpoint: string | null;
}

export class CheckpointSigner {
  readonly kid: string;
  private readonly key: KeyObject;

  private constructor(key: KeyObject, kid: string) {
    this.key = key;
    this.kid = kid;
  }

  /** Reads a PKCS#8 PEM Ed25519 private key. */
  static async fromFile(path: string): Promise<CheckpointSigner> {
    const key = createPrivateKey(await readFile(path));
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(`${path}: audit.signingKey must be an Ed25519 private key (found ${key.asymmetricKeyType})`);
    return new CheckpointSigner(key, await keyId(createPublicKey(key)));
  }

  async sign(payload: string): Promise<string> {
    const { CompactSign } = await jose();
    return new CompactSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid })
      .sign(this.key);
  }
}

/** RFC 7638 thumbprint of the public key: names the key in checkpoints and in verify's output. */
export async function keyId(publicKey: KeyObject): Promise<string> {
  const { calculateJwkThumbprint, exportJWK } = await jose();
  return calculateJwkThumbprint(await exportJWK(publicKey));
}

/** Builds the next checkpoint line (not yet committed to the chain). */
export async function checkpointLine(
  chain: Chain,
  facts: CheckpointFacts,
  signer: CheckpointSigner | undefined,
): Promise<string> {
  const body = `${chain.head('checkpoint')},${JSON.stringify({ ...facts, kid: signer?.kid ?? null }).slice(1)}`;
  const jws = signer ? JSON.stringify(await signer.sign(body)) : 'null';
  return `${body.slice(0, -1)},"jws":${jws}}`;
}

/** The signed payload of a checkpoint line: the line without its jws field. */
export function checkpointPayload(line: string): string | undefined {
  const at = line.lastIndexOf(',"jws":');
  return at === -1 ? undefined : `${line.slice(0, at)}}`;
}

/** Why the checkpoint's signature does not hold, or undefined when it does. */
export async function checkSignature(line: string, jws: unknown, publicKey: KeyObject): Promise<string | undefined> {
  if (typeof jws !== 'string') return 'checkpoint is not signed';
  let payload: Uint8Array;
  const { compactVerify } = await jose();
  try {
    ({ payload } = await compactVerify(jws, publicKey, { algorithms: ['EdDSA'] }));
  } catch (err) {
    return `checkpoint signature is invalid (${(err as Error).message})`;
  }
  if (new TextDecoder().decode(payload) !== checkpointPayload(line))
    return 'checkpoint line differs from what was signed';
  return undefined;
}
