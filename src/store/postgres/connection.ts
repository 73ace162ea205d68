import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, Pool, types, type ClientConfig } from 'pg';
import type { PostgresDatabaseConfig } from '../../config';

/**
 * How the store connects: the pool of the repositories, and the dedicated connections of the
 * change feed and the bootstrap lock, all from one configuration (src/config.ts, KMS_DATABASE_*).
 */

/**
 * BIGINT (milliseconds since the epoch, counts) as a JavaScript number, not pg's default string:
 * every BIGINT this schema holds is far below 2^53, and one that is not is refused, not rounded.
 */
function parseBigint(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`a BIGINT beyond 2^53 cannot be read exactly: ${text}`);
  return value;
}

const INT8 = types.builtins.INT8;
const typeParsers: NonNullable<ClientConfig['types']> = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 && format !== 'binary' ? parseBigint : types.getTypeParser(oid, format))) as NonNullable<
    ClientConfig['types']
  >['getTypeParser'],
};

/**
 * libpq's sslmode, as node-postgres's TLS options (the CA file read now, at each open). The name
 * checked by verify-full is the host's: node-postgres gives it to TLS (as SNI too, unless an IP).
 */
function tlsOptions(config: PostgresDatabaseConfig): false | ConnectionOptions {
  if (config.sslMode === 'disable') return false;
  const ca = config.caFile === undefined ? undefined : readFileSync(config.caFile);
  switch (config.sslMode) {
    case 'require':
      // As libpq: encrypted; verified against the CA file only when one is given (as verify-ca).
      return ca ? { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
    case 'verify-ca':
      return { ...(ca ? { ca } : {}), rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ...(ca ? { ca } : {}), rejectUnauthorized: true };
  }
}

/** The settings of every connection of the store (the URL's parts; the password from its file). */
export function clientConfig(config: PostgresDatabaseConfig): ClientConfig {
  const url = new URL(config.url);
  const host = url.searchParams.get('host') ?? (decodeURIComponent(url.hostname) || 'localhost');
  return {
    host,
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username) || undefined,
    password: config.password,
    database: decodeURIComponent(url.pathname.slice(1)),
    ssl: tlsOptions(config),
    types: typeParsers,
    application_name: 'kms',
    // A database that does not answer fails the call (503) rather than holding it forever.
    connectionTimeoutMillis: 5000,
    keepAlive: true,
  };
}

export function createPool(config: PostgresDatabaseConfig): Pool {
  return new Pool({ ...clientConfig(config), max: config.poolSize, idleTimeoutMillis: 30_000 });
}

export function createClient(config: PostgresDatabaseConfig): Client {
  return new Client(clientConfig(config));
}
