/**
 * The composition root (src/open-core.ts) that the service, the cluster's initialiser and the
 * command-line tool share: when a step of the opening fails, what the steps before it opened is
 * closed; and the tool's data directory must exist. "Closed" is seen from outside the code: no
 * file of the data directory is left open by this process (the HSM holds its token lock, hsm.lock;
 * the store its database).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { cliAuditLogFile } from '../../src/audit/audit-log';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { openCore } from '../../src/open-core';
import { startService } from '../../src/server';
import { LogCapture, makeDataDir } from '../helpers/service';
import { removeSoftHsmToken } from '../helpers/softhsm-tokens';
import { freshTokenEnv, testModuleKind } from '../helpers/test-module';

/** The files under `dir` this process has open (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(path.join('/proc/self/fd', fd));
      if (target.startsWith(`${dir}${path.sep}`)) files.push(path.basename(target));
    } catch {
      // The descriptor readdir itself used, already closed.
    }
  }
  return files.sort();
}

describe('openCore', () => {
  const dataDir = makeDataDir();
  const tokenLabel = `kms-test-${randomBytes(6).toString('hex')}`;
  const tokenEnv = freshTokenEnv(dataDir, tokenLabel);
  const config: Config = loadConfig({ KMS_DATA_DIR: dataDir, ...tokenEnv });
  const logs = new LogCapture();
  const logger = createLogger('debug', logs);

  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
    if (testModuleKind() !== 'nss') removeSoftHsmToken(tokenLabel);
  });

  it('holds the token lock and the database while open, and no file of the data directory once closed', async () => {
    const core = await openCore(config, { logger, dataDir: 'create' });
    expect(openFilesUnder(dataDir)).toEqual(expect.arrayContaining(['hsm.lock', 'kms.sqlite']));
    await core.close();
    expect(openFilesUnder(dataDir)).toEqual([]);
  });

  it('closes the HSM it opened when the store cannot be opened', async () => {
    const newer = path.join(makeDataDir(), 'kms.sqlite');
    const db = new Database(newer);
    db.pragma('user_version = 999');
    db.close();
    const withNewerDatabase: Config = { ...config, databasePath: newer };
    await expect(openCore(withNewerDatabase, { logger, dataDir: 'create' })).rejects.toThrow(/the database's schema \(999\) is newer than this service's/);
    expect(openFilesUnder(dataDir)).toEqual([]);
    rmSync(path.dirname(newer), { recursive: true, force: true });
    // The module was finalised too: the next open initialises it again.
    const core = await openCore(config, { logger, dataDir: 'create' });
    await core.close();
  });

  it('closes the store and the HSM when the audit chain cannot be opened', async () => {
    const cannot = new Error('the audit chain cannot be opened');
    const opening = openCore(config, {
      logger,
      dataDir: 'create',
      audit: () => {
        throw cannot;
      },
    });
    await expect(opening).rejects.toBe(cannot);
    expect(openFilesUnder(dataDir)).toEqual([]);
  });

  it("refuses the tool a data directory that does not exist, and makes none (no token, no database)", async () => {
    const missing = path.join(dataDir, 'mistyped');
    await expect(openCore({ ...config, dataDir: missing, databasePath: path.join(missing, 'kms.sqlite') }, { logger, dataDir: 'existing' })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(existsSync(missing)).toBe(false);
  });
});

describe('startService', () => {
  const dataDir = makeDataDir();
  const tokenLabel = `kms-test-${randomBytes(6).toString('hex')}`;
  const config: Config = loadConfig({ KMS_DATA_DIR: dataDir, PORT: '0', ...freshTokenEnv(dataDir, tokenLabel) });

  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
    if (testModuleKind() !== 'nss') removeSoftHsmToken(tokenLabel);
  });

  it('closes the core it opened when a later step of the start fails (the first-start credential cannot be recorded)', async () => {
    // audit-cli.log, where the first start records the admin credential, cannot be opened for appending.
    mkdirSync(cliAuditLogFile(dataDir));
    await expect(startService(config, { logger: createLogger('silent', new LogCapture()) })).rejects.toMatchObject({ code: 'EISDIR' });
    expect(openFilesUnder(dataDir)).toEqual([]);
    expect(existsSync(config.adminCredentialsPath)).toBe(false);
  });
});
