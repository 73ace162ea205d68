import type { Config } from './config';

/** The service's base URL as it logs it ("KMS listening"): https when TLS is on. */
export function serviceUrl(config: Config, port: number): string {
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return `${config.tls ? 'https' : 'http'}://${host}:${port}`;
}
