// A throwaway PKI for mTLS tests, made with the system's openssl in a temporary folder: CAs, a
// server certificate for 127.0.0.1/localhost, and client certificates with whatever subject and
// SANs a test needs (none, one SPIFFE ID, several). EC P-256 keys: each certificate takes a few
// milliseconds.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dirs.ts';

const run = promisify(execFile);
export const OPENSSL = '/usr/bin/openssl';

export interface IssuedCert {
  /** Paths of the PEM certificate and its key. */
  cert: string;
  key: string;
  /** The certificate's PEM text. */
  pem: string;
}

export interface Ca extends IssuedCert {
  name: string;
}

export class Pki {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<Pki> {
    return new Pki(await tempDir('lm-gate-pki-'));
  }

  /** A self-signed CA. */
  async ca(name: string): Promise<Ca> {
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    await openssl(
      'req',
      '-x509',
      ...EC_KEY,
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    return { name, cert, key, pem: await readFile(cert, 'utf8') };
  }

  /** A certificate `issuer` signs. `subject` in openssl's form ("/O=Acme/CN=billing"); `sans`
   * as openssl's subjectAltName entries ("URI:spiffe://...", "DNS:localhost"), in order. */
  async issue(
    name: string,
    issuer: Ca,
    opts: { subject: string; sans?: string[]; usage?: 'client' | 'server' },
  ): Promise<IssuedCert> {
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    await openssl('req', ...EC_KEY, '-nodes', '-keyout', key, '-out', csr, '-subj', opts.subject);
    const sans = opts.sans ?? [];
    // One numbered entry per line in a section: values may hold commas, which the one-line
    // form would split.
    const lines = [
      `extendedKeyUsage=${opts.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ...(sans.length > 0 ? ['subjectAltName=@alt', '[alt]'] : []),
      ...sans.map((s, i) => {
        const colon = s.indexOf(':');
        return `${s.slice(0, colon)}.${i + 1}=${s.slice(colon + 1)}`;
      }),
    ];
    await writeFile(ext, `${lines.join('\n')}\n`);
    await openssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      issuer.cert,
      '-CAkey',
      issuer.key,
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      '2',
      '-out',
      cert,
      '-extfile',
      ext,
    );
    return { cert, key, pem: await readFile(cert, 'utf8') };
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

async function openssl(...args: string[]): Promise<void> {
  try {
    await run(OPENSSL, args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}
