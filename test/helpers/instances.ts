import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kmsClient, type KmsClient } from './client';
import { readAdminCredentials, startServiceProcess, type AdminCredentials, type ServiceProcess } from './service-process';

/**
 * Several instances of the service, as production runs them: separate processes (one worker each),
 * each with its own data directory (its audit chains) and name, on one PostgreSQL database and one
 * token. The token is the embedded SoftHSM one, kept in one directory they share (KMS_SOFTHSM_DIR)
 * with its lock beside it, as docker-compose.yml's profile `several` shares it on a volume.
 */
export interface Instance {
  readonly name: string;
  readonly dataDir: string;
  process: ServiceProcess;
  /** A client of the admin's project through this instance. */
  readonly kms: KmsClient;
}

export interface Instances {
  readonly list: readonly Instance[];
  /** The admin credential the first start made (in the first instance's data directory). */
  readonly admin: AdminCredentials;
  readonly tokenDir: string;
  /** Starts an instance again on its data directory (after a crash or a stop). */
  restart(instance: Instance): Promise<void>;
  /** Stops every instance still running and removes their directories. */
  stop(): Promise<void>;
}

export async function startInstances(databaseUrl: string, names: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Instances> {
  const root = mkdtempSync(path.join(tmpdir(), 'kms-instances-'));
  const tokenDir = path.join(root, 'token');
  const envOf = (name: string): NodeJS.ProcessEnv => ({ KMS_WORKERS: '1', KMS_INSTANCE_ID: name, KMS_DATABASE_URL: databaseUrl, KMS_SOFTHSM_DIR: tokenDir, ...env });
  const list: Instance[] = [];
  let admin: AdminCredentials | undefined;
  const start = async (name: string): Promise<Instance> => {
    const dataDir = path.join(root, name);
    const started = await startServiceProcess(dataDir, envOf(name));
    // The first start makes the admin credential (in its data directory); the others find it made.
    admin ??= readAdminCredentials(dataDir);
    const credentials = admin;
    const instance: Instance = { name, dataDir, process: started, kms: kmsClient(() => instance.process.url, credentials.project_id, { 'x-auth-token': credentials.token }) };
    return instance;
  };
  try {
    list.push(await start(names[0]!));
    list.push(...(await Promise.all(names.slice(1).map(start))));
  } catch (error) {
    await Promise.all(list.map((instance) => instance.process.crash()));
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return {
    list,
    admin: admin!,
    tokenDir,
    async restart(instance) {
      instance.process = await startServiceProcess(instance.dataDir, envOf(instance.name));
    },
    async stop() {
      await Promise.all(list.map((instance) => (instance.process.child.exitCode === null && instance.process.child.signalCode === null ? instance.process.stop() : undefined)));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
