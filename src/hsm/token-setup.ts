import { randomBytes } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { Logger } from 'pino';
import { ckrName, ckrOf } from './ckr';
import { HsmStartError } from './start-error';

/**
 * The arguments of C_Initialize. Asynchronous calls run on libuv worker threads, several at a time:
 * the module must lock its own state. Without CKF_OS_LOCKING_OK a module may assume a single
 * thread (SoftHSM then runs without mutexes and corrupts its heap under concurrent calls).
 * `initArgs` is the module's own initialisation string (CK_C_INITIALIZE_ARGS.pReserved), which
 * some modules need: NSS's softoken, for one, is told where its database is
 * (`configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=`).
 */
export function initializeOptions(initArgs?: string): pkcs11.InitializationOptions {
  return initArgs ? { flags: pkcs11.CKF_OS_LOCKING_OK, libraryParameters: initArgs } : { flags: pkcs11.CKF_OS_LOCKING_OK };
}

/** Loads and initialises a PKCS#11 module; a failure is a one-line start-up error. */
export function loadModule(modulePath: string, initArgs?: string): graphene.Module {
  try {
    const module = graphene.Module.load(modulePath);
    module.initialize(initializeOptions(initArgs));
    return module;
  } catch (error) {
    throw new HsmStartError(`cannot load PKCS#11 module ${modulePath}: ${ckrName(error)}`, { cause: error });
  }
}

/**
 * The slots whose token carries `label`. A token that cannot be read throws, unless
 * `skipUnreadable`: then one that answers as a removed token does (SoftHSM's CKR_GENERAL_ERROR,
 * or CKR_TOKEN_NOT_PRESENT) is passed over as not the one looked for.
 */
export function tokenSlots(module: graphene.Module, label: string, skipUnreadable = false): graphene.Slot[] {
  const slots = module.getSlots(true);
  const found: graphene.Slot[] = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    let tokenLabel: string;
    try {
      tokenLabel = slot.getToken().label;
    } catch (error) {
      const code = ckrOf(error);
      if (skipUnreadable && (code === pkcs11.CKR_GENERAL_ERROR || code === pkcs11.CKR_TOKEN_NOT_PRESENT)) continue;
      throw error;
    }
    if (tokenLabel === label) found.push(slot);
  }
  return found;
}

export interface TokenCreation {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly logger: Logger;
}

/**
 * Makes sure a token labelled `tokenLabel` exists, initialising the first uninitialised token
 * (SoftHSM always offers one) when none does. The caller holds the token lock, so no other process
 * of the service looks for the token or logs in to it meanwhile: a token that is not listed really
 * is missing, not merely being rewritten by another process's login. The SO PIN is random and
 * forgotten: the embedded token is managed through the user PIN alone.
 */
export function createTokenIfMissing(options: TokenCreation): void {
  for (let attempt = 1; ; attempt++) {
    try {
      createTokenOnce(options);
      return;
    } catch (error) {
      if (!(error instanceof SlotListingFailed)) throw error;
      // Nothing was changed yet: a fresh C_Initialize reads the token directory again.
      if (attempt >= LISTING_ATTEMPTS) throw error.failure;
      options.logger.warn({ token: options.tokenLabel, attempt, err: error.failure }, 'the slots could not be listed; initialising the module again');
    }
  }
}

/**
 * SoftHSM lists, at C_Initialize, every token of its directory; a token another process removes
 * meanwhile stays listed and answers CKR_GENERAL_ERROR for good in this initialisation (tests share
 * one token directory and remove their tokens when done). Listing again after a new
 * C_Initialize sees the directory as it is now.
 */
const LISTING_ATTEMPTS = 3;

/** The slots could not be listed: nothing was changed, so the creation may be tried again. */
class SlotListingFailed extends Error {
  constructor(readonly failure: HsmStartError) {
    super(failure.message);
  }
}

function createTokenOnce(options: TokenCreation): void {
  const module = loadModule(options.modulePath);
  try {
    let existing: graphene.Slot[];
    let free: graphene.Slot | undefined;
    try {
      existing = tokenSlots(module, options.tokenLabel);
      const slots = module.getSlots(true);
      for (let i = 0; i < slots.length && !free; i++) {
        const slot = slots.items(i);
        if ((slot.getToken().flags & pkcs11.CKF_TOKEN_INITIALIZED) === 0) free = slot;
      }
    } catch (error) {
      throw new SlotListingFailed(new HsmStartError(`cannot create the token: ${ckrName(error)}`, { cause: error }));
    }
    if (existing.length > 1) throw new HsmStartError(`more than one token is labelled "${options.tokenLabel}"`);
    if (existing.length === 1) return;
    if (!free) throw new HsmStartError('no uninitialised token is available to create the embedded token');
    const soPin = randomBytes(24).toString('hex');
    const lib = module.lib;
    // PKCS#11 labels are 32 bytes padded with blanks; pkcs11js would pad with NULs, which other tools do not match.
    lib.C_InitToken(free.handle, soPin, options.tokenLabel.padEnd(32, ' '));
    // Another process may have removed its token since C_Initialize (see LISTING_ATTEMPTS): that
    // token now answers CKR_GENERAL_ERROR, and it is not the one just initialised here.
    const created = tokenSlots(module, options.tokenLabel, true)[0];
    if (!created) throw new HsmStartError('the new token cannot be found after initialisation');
    const session = lib.C_OpenSession(created.handle, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    try {
      lib.C_Login(session, pkcs11.CKU_SO, soPin);
      lib.C_InitPIN(session, options.pin);
      lib.C_Logout(session);
    } finally {
      lib.C_CloseSession(session);
    }
    options.logger.info({ token: options.tokenLabel }, 'initialised a new token');
  } catch (error) {
    throw error instanceof HsmStartError || error instanceof SlotListingFailed ? error : new HsmStartError(`cannot create the token: ${ckrName(error)}`, { cause: error });
  } finally {
    finalizeQuietly(module);
  }
}

/** Lets go of a module; finalising one that lost its device can fail, and the process is done with it anyway. */
export function finalizeQuietly(module: graphene.Module): void {
  try {
    module.finalize();
  } catch {
    // See above.
  }
  try {
    module.close();
  } catch {
    // See above.
  }
}
