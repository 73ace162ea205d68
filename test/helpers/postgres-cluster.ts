import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

/**
 * A throwaway PostgreSQL cluster for the tests of the PostgreSQL store: Debian's server (installed
 * by `hsm/ensure-softhsm.sh --with-postgres`, npm test's pretest), never a mock. One cluster per
 * test file (Jest runs files in separate workers, so files never share one), in a temporary
 * directory, on a free port of 127.0.0.1, its unix socket in that directory (never Debian's own
 * /var/run/postgresql), with every durability setting off (fsync, synchronous_commit,
 * full_page_writes: nothing here must survive a power cut) and trust authentication for local and
 * 127.0.0.1 connections. Each test takes a fresh database of it (CREATE DATABASE), so that tests do
 * not see each other's rows.
 *
 * initdb and pg_ctl refuse to run as root: the tests run as root here, so they run as the
 * `postgres` user Debian's package makes, and the cluster's directory is given to that user.
 */

export interface PostgresCluster {
  /** The URL of a database of the cluster (its `postgres` database by default). */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  freshDatabase(): Promise<string>;
  /** How long initdb and the start took, in milliseconds. */
  readonly startMs: number;
  /**
   * Stops the server until resume(), keeping its data: a fast shutdown (its sessions are ended, as a
   * restart ends them), not an immediate one, since with synchronous_commit off a crash would lose
   * the last commits.
   */
  pause(): void;
  /** Starts the paused server again, on the same port and data. */
  resume(): void;
  /** Stops the server (immediate mode: nothing to keep) and removes its directory. Idempotent. */
  stop(): void;
}

/** The newest installed server's binaries (Debian's layout: /usr/lib/postgresql/<major>/bin). */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && existsSync(path.join(root, name, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0) throw new Error('PostgreSQL is not installed: run `bash hsm/ensure-softhsm.sh --with-postgres` (npm test does)');
  return path.join(root, majors[0]!, 'bin');
}

/** The user and group the server runs as: `postgres` when the tests run as root, else the tests' own. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface ClusterOptions {
  /**
   * TLS on (ssl=on) with this certificate and key (PEM files; copied into the cluster's directory,
   * where the server's user can read them). Connections without TLS are still accepted.
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export async function startPostgresCluster(options: ClusterOptions = {}): Promise<PostgresCluster> {
  const started = Date.now();
  const bin = binDir();
  const identity = serverIdentity();
  const root = mkdtempSync(path.join(tmpdir(), 'kms-postgres-'));
  if (identity) chownSync(root, identity.uid, identity.gid);
  if (options.tls) {
    for (const [from, to] of [
      [options.tls.certFile, 'server.pem'],
      [options.tls.keyFile, 'server.key'],
    ] as const) {
      copyFileSync(from, path.join(root, to));
      // The server refuses a key others can read.
      chmodSync(path.join(root, to), 0o600);
      if (identity) chownSync(path.join(root, to), identity.uid, identity.gid);
    }
  }
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'server.log');
  const run = (tool: string, args: string[]): void => {
    const result = spawnSync(path.join(bin, tool), args, {
      encoding: 'utf8',
      ...(identity ?? {}),
      // The server's user cannot read root's working directory.
      cwd: root,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
    });
    if (result.status !== 0) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
      throw new Error(`${tool} failed (${result.status ?? result.signal}): ${result.stderr || String(result.error)}\n${log}`);
    }
  };

  let port = 0;
  let running = false;
  const halt = (mode: 'immediate' | 'fast'): void => {
    if (running) {
      running = false;
      // Never smart: a smart shutdown would wait for the tests' clients to leave.
      spawnSync(path.join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', mode, '-w'], { ...(identity ?? {}), cwd: root, stdio: 'ignore' });
    }
  };
  const serverOptions = (): string =>
    [
      `-p ${port}`,
      `-k ${root}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
      ...(options.tls ? ['-c ssl=on', `-c ssl_cert_file=${root}/server.pem`, `-c ssl_key_file=${root}/server.key`] : []),
    ].join(' ');
  const stop = (): void => {
    // Immediate: the data is thrown away anyway.
    halt('immediate');
    rmSync(root, { recursive: true, force: true });
    process.removeListener('exit', stop);
  };
  // A backstop for a worker that exits without its afterAll: never leave a server behind.
  process.on('exit', stop);

  try {
    // --no-sync: initdb's own fsyncs are the larger part of its time, and nothing here is kept.
    run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        run('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverOptions()]);
        running = true;
        break;
      } catch (error) {
        // Another process may have taken the free port before the server bound it.
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    stop();
    throw error;
  }

  const url = (database = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let databases = 0;
  return {
    url,
    startMs: Date.now() - started,
    pause: () => halt('fast'),
    resume() {
      if (running) return;
      run('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverOptions()]);
      running = true;
    },
    stop,
    async freshDatabase() {
      const name = `test_${++databases}`;
      const client = new Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
  };
}

/**
 * One cluster for the test file that calls it (at its top level): started before its first test,
 * stopped after its last whether the tests passed or not. Returns a getter, since the cluster
 * exists only once beforeAll has run.
 */
export function usePostgresCluster(options: ClusterOptions | (() => ClusterOptions) = {}): () => PostgresCluster {
  let cluster: PostgresCluster | undefined;
  beforeAll(async () => {
    cluster = await startPostgresCluster(typeof options === 'function' ? options() : options);
  }, 120_000);
  afterAll(() => {
    cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error('the PostgreSQL cluster is not started (usePostgresCluster runs in beforeAll)');
    return cluster;
  };
}
