import { isIP } from 'node:net';
import type { SecureContextOptions, Server as TlsServer, TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Config, TlsConfig } from '../config';
import { readTlsFiles, TlsFileError, type TlsMaterial } from './tls-files';

/**
 * node:tls's options for the service: the files' contents, the configured oldest protocol
 * (TLSv1.2 by default) and Node's default cipher list (not set here: it follows Node's updates).
 * With client CAs, a certificate is asked for but a handshake without one, or with an untrusted
 * one, is not refused: the HTTP layer answers such a request with the API's 401 and audits it
 * (src/http/client-certificate.ts), and the health probes stay reachable for a load balancer.
 */
export function tlsOptions(config: TlsConfig, material: TlsMaterial): TlsOptions {
  return {
    ...contextOptions(config, material),
    ...(material.ca ? { requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/** What setSecureContext replaces: everything of the files, and the protocol floor with it. */
function contextOptions(config: TlsConfig, material: TlsMaterial): SecureContextOptions {
  return { cert: material.cert, key: material.key, minVersion: config.minVersion, ...(material.ca ? { ca: material.ca } : {}) };
}

/** The fields of a log line about the served certificate. */
export function certificateFields(material: TlsMaterial): Record<string, unknown> {
  return { certificate: material.certificate, clientCertificates: material.ca ? 'required' : 'off' };
}

/**
 * Reloads the TLS files into a listening server (SIGHUP): connections already open keep the
 * context they were made with, requests on them finish; new connections get the new one. A file
 * that cannot be served leaves the previous context in place and is logged as one error line.
 */
export class TlsReloader {
  constructor(
    private readonly server: TlsServer,
    private readonly config: TlsConfig,
    private readonly logger: Logger,
  ) {}

  /** True when the new files are served from now on. */
  reload(): boolean {
    let material: TlsMaterial;
    try {
      material = readTlsFiles(this.config);
      this.server.setSecureContext(contextOptions(this.config, material));
    } catch (error) {
      // The message names a setting and a path, never a file's content (TlsFileError's promise).
      const reason = error instanceof TlsFileError ? error.message : `the new TLS files cannot be served (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
      this.logger.error({ reason }, 'TLS reload failed; still serving the previous certificate');
      return false;
    }
    this.logger.info(certificateFields(material), 'TLS certificate reloaded');
    warnIfExpired(material, this.logger);
    return true;
  }
}

export function warnIfExpired(material: TlsMaterial, logger: Logger): void {
  if (Date.parse(material.certificate.validTo) <= Date.now()) {
    logger.warn({ validTo: material.certificate.validTo }, 'the TLS certificate has expired: clients will refuse it');
  }
}

/** Addresses only this machine can reach: 127.0.0.0/8, ::1, and localhost. */
export function isLoopbackHost(host: string): boolean {
  const address = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (address === 'localhost') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/** Plain HTTP beyond loopback sends credentials' signatures, tokens and data keys in the clear. */
export function warnIfPlainHttpBeyondLoopback(config: Config, logger: Logger): void {
  if (config.tls || isLoopbackHost(config.host)) return;
  logger.warn({ host: config.host }, 'serving plain HTTP beyond loopback: tokens and data keys cross the network in the clear; set KMS_TLS_CERT_FILE and KMS_TLS_KEY_FILE');
}
