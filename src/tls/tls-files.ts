import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { TlsConfig } from '../config';
import { StartError } from '../start-error';

/** What the logs say of the server's certificate: nothing secret, enough to tell which one is served. */
export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  /** SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it. */
  readonly fingerprint256: string;
}

/** The files' contents, checked, as node:tls takes them. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** mTLS: the trusted client CAs. */
  readonly ca?: Buffer;
  readonly certificate: CertificateSummary;
}

/**
 * A TLS file that cannot be served: missing, unreadable, not PEM, or a key that does not belong
 * to the certificate. The message is one line naming the setting and the path; it never holds any
 * of a file's content (a key must not reach a log because it was malformed).
 */
export class TlsFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsFileError';
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function read(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new TlsFileError(`${setting} cannot be read: ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
}

/** Every certificate of a PEM file; at least one, each one parsed (node:tls skips what it cannot parse in `ca`). */
function certificates(setting: string, file: string, pem: Buffer): [X509Certificate, ...X509Certificate[]] {
  const [first, ...others] = (pem.toString('latin1').match(PEM_CERTIFICATE) ?? []).map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new TlsFileError(`${setting} holds a certificate that cannot be parsed: ${file}`, { cause: error });
    }
  });
  if (first === undefined) throw new TlsFileError(`${setting} holds no PEM certificate: ${file}`);
  return [first, ...others];
}

function privateKey(file: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // OpenSSL's reason is kept for the cause only: the message names the file, never its bytes.
    const why = code === 'ERR_MISSING_PASSPHRASE' ? 'an encrypted private key (give it unencrypted, mode 0600)' : 'no PEM private key';
    throw new TlsFileError(`KMS_TLS_KEY_FILE holds ${why}: ${file}`, { cause: error });
  }
}

/**
 * Reads and checks the TLS files: the certificate file (the server's certificate first, then its
 * chain), its private key, and the client CAs of mTLS. Throws {@link TlsFileError}.
 */
export function readTlsFiles(config: TlsConfig): TlsMaterial {
  const cert = read('KMS_TLS_CERT_FILE', config.certFile);
  const key = read('KMS_TLS_KEY_FILE', config.keyFile);
  const ca = config.clientCaFile === undefined ? undefined : read('KMS_TLS_CLIENT_CA_FILE', config.clientCaFile);
  const [leaf] = certificates('KMS_TLS_CERT_FILE', config.certFile, cert);
  if (!leaf.checkPrivateKey(privateKey(config.keyFile, key))) {
    throw new TlsFileError(`KMS_TLS_KEY_FILE is not the key of the certificate in KMS_TLS_CERT_FILE: ${config.keyFile}, ${config.certFile}`);
  }
  if (ca !== undefined) certificates('KMS_TLS_CLIENT_CA_FILE', config.clientCaFile ?? '', ca);
  try {
    // What node:tls itself would refuse at a handshake (e.g. a key type OpenSSL does not serve) is refused now.
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (error) {
    throw new TlsFileError(`KMS_TLS_CERT_FILE and KMS_TLS_KEY_FILE cannot be served (${(error as NodeJS.ErrnoException).code ?? 'error'}): ${config.certFile}`, { cause: error });
  }
  return {
    cert,
    key,
    ...(ca ? { ca } : {}),
    certificate: {
      subject: oneLine(leaf.subject),
      issuer: oneLine(leaf.issuer),
      validFrom: new Date(leaf.validFrom).toISOString(),
      validTo: new Date(leaf.validTo).toISOString(),
      fingerprint256: leaf.fingerprint256,
    },
  };
}

/** X509Certificate separates a name's parts with newlines; a log line joins them. */
function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

/** The TLS files at start: one that cannot be served stops the start with its one line. */
export function startTlsFiles(config: TlsConfig): TlsMaterial {
  try {
    return readTlsFiles(config);
  } catch (error) {
    if (error instanceof TlsFileError) throw new StartError(error.message, { cause: error });
    throw error;
  }
}
