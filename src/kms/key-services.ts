import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Hsm } from '../hsm/hsm';
import type { ChangeWatch } from '../store/change-watch';
import { GrantStore } from '../store/grant-store';
import { KeyStore } from '../store/key-store';
import { RotationStore } from '../store/rotation-store';
import type { Clock } from './context';
import { GrantAccess } from './grant-service';
import { KeyRotator, type RotationObserver } from './key-rotation';
import { KeyService } from './key-service';
import { RotationService } from './rotation-service';
import { SealUsage } from './seal-usage';

export interface KeyServices {
  readonly store: KeyStore;
  readonly grantStore: GrantStore;
  readonly rotations: RotationStore;
  readonly rotator: KeyRotator;
  readonly usage: SealUsage;
  readonly grantAccess: GrantAccess;
  readonly keys: KeyService;
  readonly rotation: RotationService;
}

export interface KeyServicesDeps {
  readonly db: Database.Database;
  readonly changes: ChangeWatch;
  readonly hsm: Hsm;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: Pick<Config, 'region' | 'maxKeysPerProject' | 'sealBudget'>;
  /** Told of every rotation (the service's metrics). */
  readonly rotationObserver?: RotationObserver;
}

/**
 * The key lifecycle and rotation services over one database and HSM, wired as the service wires
 * them (src/server.ts), so that the command-line tool applies the very same rules. Nothing here
 * starts a timer: seal counts are flushed, and sweeps run, only where the caller starts them.
 */
export function keyServices({ db, changes, hsm, clock, logger, config, rotationObserver }: KeyServicesDeps): KeyServices {
  const store = new KeyStore(db, changes);
  const grantStore = new GrantStore(db);
  const grantAccess = new GrantAccess(grantStore, clock);
  const rotations = new RotationStore(db, store);
  const rotator = new KeyRotator({ rotations, hsm, clock, logger, sealBudget: config.sealBudget, observer: rotationObserver });
  const usage = new SealUsage(rotations, rotator, logger);
  const keys = new KeyService({ store, hsm, clock, logger, region: config.region, maxKeysPerProject: config.maxKeysPerProject, grants: grantAccess, rotations });
  const rotation = new RotationService({ keys, rotations, rotator, usage, clock });
  return { store, grantStore, rotations, rotator, usage, grantAccess, keys, rotation };
}
