import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Certificates made for the test run with the `openssl` CLI (Debian's openssl package, which
 * hsm/ensure-softhsm.sh --with-nss installs): CAs, server certificates for 127.0.0.1 and
 * localhost, client certificates. ECDSA P-256 keys, valid for two days, in PEM files.
 */
export interface Issued {
  /** The certificate's PEM file. */
  readonly certFile: string;
  /** Its unencrypted private key's PEM file. */
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 fingerprint, as node:tls reports a peer's (`fingerprint256`). */
  readonly fingerprint256: string;
}

export class TestPki {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'kms-tls-'));
  private serial = 1;

  /** A self-signed CA. */
  ca(name: string): Issued {
    const base = path.join(this.dir, name);
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${name}`, '-keyout', `${base}.key`, '-out', `${base}.pem`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return issued(base);
  }

  /** A server certificate for 127.0.0.1, ::1 and localhost (subjectAltName), signed by `ca`. */
  server(name: string, ca: Issued): Issued {
    return this.issue(name, ca, ['extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost']);
  }

  /** A TLS client certificate signed by `ca`. */
  client(name: string, ca: Issued): Issued {
    return this.issue(name, ca, ['extendedKeyUsage=clientAuth']);
  }

  private issue(name: string, ca: Issued, extensions: readonly string[]): Issued {
    const base = path.join(this.dir, name);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${base}.key`, '-out', `${base}.csr`]);
    const extfile = `${base}.ext`;
    writeFileSync(extfile, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', ...extensions, ''].join('\n'));
    openssl([
      'x509', '-req', '-in', `${base}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(this.serial++),
      '-days', '2', '-extfile', extfile, '-out', `${base}.pem`,
    ]);
    return issued(base);
  }
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function issued(base: string): Issued {
  const cert = readFileSync(`${base}.pem`);
  return { certFile: `${base}.pem`, keyFile: `${base}.key`, cert, key: readFileSync(`${base}.key`), fingerprint256: new X509Certificate(cert).fingerprint256 };
}
