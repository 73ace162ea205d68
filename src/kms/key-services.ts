import type { Logger } from 'pino';
import type { Config } from '../config';
import type { MetadataStore } from '../domain/repositories';
import type { Hsm } from '../hsm/hsm';
import type { Clock } from './context';
import { AliasCache } from './alias-cache';
import { AliasService } from './alias-service';
import { GrantAccess } from './grant-service';
import { KeyCache } from './key-cache';
import { KeyRotator, type RotationObserver } from './key-rotation';
import { ImportService } from './import-service';
import { KeyService } from './key-service';
import { RotationService } from './rotation-service';
import { SealUsage } from './seal-usage';
import { TagService } from './tag-service';

export interface KeyServices {
  readonly store: MetadataStore;
  readonly rotator: KeyRotator;
  readonly usage: SealUsage;
  readonly grantAccess: GrantAccess;
  readonly keys: KeyService;
  readonly rotation: RotationService;
  /** Importing key material (origin external). */
  readonly imports: ImportService;
  /** The tag operations, on the same keys and store. */
  readonly tags: TagService;
  /** The aliases (v2), on the same keys and store. */
  readonly aliases: AliasService;
  /** Stops the key and alias caches' listening to the store's changes. */
  close(): void;
}

export interface KeyServicesDeps {
  readonly store: MetadataStore;
  readonly hsm: Hsm;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: Pick<Config, 'region' | 'maxKeysPerProject' | 'sealBudget'>;
  /** Told of every rotation (the service's metrics). */
  readonly rotationObserver?: RotationObserver;
}

/**
 * The key lifecycle, rotation, import, tag and alias services over one store and HSM, wired as the
 * service wires them (src/server.ts), so that the command-line tool applies the very same rules. Nothing here
 * starts a timer: seal counts are flushed, and sweeps run, only where the caller starts them.
 */
export function keyServices({ store, hsm, clock, logger, config, rotationObserver }: KeyServicesDeps): KeyServices {
  const cache = new KeyCache(store);
  const aliases = new AliasCache(store);
  const grantAccess = new GrantAccess(store.grants, clock);
  const rotator = new KeyRotator({ rotations: store.rotations, leases: store.leases, hsm, clock, logger, sealBudget: config.sealBudget, observer: rotationObserver });
  const usage = new SealUsage(store.rotations, rotator, logger);
  const keys = new KeyService({ store, cache, aliases, hsm, clock, logger, region: config.region, maxKeysPerProject: config.maxKeysPerProject, grants: grantAccess });
  const rotation = new RotationService({ keys, store, rotator, usage, clock });
  const tags = new TagService({ store, keys, clock, region: config.region });
  const imports = new ImportService({ keys, store, hsm, clock, logger });
  const aliasService = new AliasService({ store, hsm, keys, clock, logger, region: config.region });
  const close = (): void => {
    cache.close();
    aliases.close();
  };
  return { store, rotator, usage, grantAccess, keys, rotation, tags, imports, aliases: aliasService, close };
}
