import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { HsmConfig } from '../../src/config';
import type { MaterialRef } from '../../src/hsm/hsm';
import { findMaterialTemplate } from '../../src/hsm/templates';
import { tokenLabelOf } from './token-label';

const BLIND_WRITE: pkcs11.Template = [
  { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_DATA },
  { type: pkcs11.CKA_TOKEN, value: true },
  { type: pkcs11.CKA_LABEL, value: 'written-blindly' },
];

/**
 * A second handle on the PKCS#11 module the service has loaded in this process: PKCS#11 state is
 * per process, so what this does to sessions or the module, the service sees too. Tests use it to
 * look at the token from outside and to break things behind the service's back, as a crashed
 * device or another process sharing the token would.
 */
export class SideChannel {
  private readonly lib = new pkcs11.PKCS11();
  private readonly tokenLabel: string;
  private readonly initArgs: string | undefined;

  constructor(hsm: HsmConfig) {
    this.tokenLabel = hsm.tokenLabel;
    this.initArgs = hsm.kind === 'external' ? hsm.initArgs : undefined;
    this.lib.load(hsm.modulePath);
    this.initialize();
  }

  initialize(): void {
    try {
      this.lib.C_Initialize(this.initArgs ? { libraryParameters: this.initArgs, flags: pkcs11.CKF_OS_LOCKING_OK } : undefined);
    } catch (error) {
      if (!(error instanceof pkcs11.Pkcs11Error && error.code === pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) throw error;
    }
  }

  /**
   * The slot of this file's token. A slot SoftHSM cannot read now is passed over (tokenLabelOf:
   * another file's token removed meanwhile, or a token file being rewritten); when this file's is
   * not found, the slots are listed again a few times (the service's login rewrites its file).
   */
  slot(): Buffer {
    for (let attempt = 1; ; attempt++) {
      for (const slot of this.lib.C_GetSlotList(true)) {
        if (tokenLabelOf(this.lib, slot) === this.tokenLabel) return slot;
      }
      if (attempt === 20) throw new Error(`token ${this.tokenLabel} not found`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }

  /** Runs `work` in a fresh read-write session of the token (the service's login covers it). */
  withSession<T>(work: (session: Buffer) => T): T {
    const session = this.openSession();
    try {
      return work(session);
    } finally {
      this.lib.C_CloseSession(session);
    }
  }

  /** A read-write session of the token, for work that spans awaits; close it with {@link closeSession}. */
  openSession(): Buffer {
    return this.lib.C_OpenSession(this.slot(), pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  }

  closeSession(session: Buffer): void {
    this.lib.C_CloseSession(session);
  }

  findKey(session: Buffer, ref: MaterialRef): Buffer | undefined {
    this.lib.C_FindObjectsInit(session, graphene.Template.toPkcs11(findMaterialTemplate(ref)));
    try {
      return this.lib.C_FindObjects(session, 1)[0];
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }

  /** Every object of the token that matches `template` (raw PKCS#11 attributes, not the service's templates). */
  find(session: Buffer, template: pkcs11.Template): Buffer[] {
    this.lib.C_FindObjectsInit(session, template);
    try {
      const found: Buffer[] = [];
      for (let batch = this.lib.C_FindObjects(session, 16); batch.length > 0; batch = this.lib.C_FindObjects(session, 16)) found.push(...batch);
      return found;
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }

  attributes(session: Buffer, handle: Buffer, types: number[]): Map<number, unknown> {
    const read = this.lib.C_GetAttributeValue(session, handle, types.map((type) => ({ type })));
    return new Map(read.map((attribute) => [attribute.type, attribute.value]));
  }

  readValue(session: Buffer, handle: Buffer): unknown {
    return this.lib.C_GetAttributeValue(session, handle, [{ type: pkcs11.CKA_VALUE }]);
  }

  /**
   * Writes a token object (a data object) without looking at the token first. SoftHSM's file store
   * then takes the token's generation counter past anything another process wrote since this
   * process last looked, so this process stops seeing those objects: the lagging view the HSM
   * layer must not trust when a key is missing. (Reading the token's information, as opening a
   * session does, makes SoftHSM look again: open the session before the other process writes.)
   */
  writeBlindly(session: Buffer): void {
    this.lib.C_CreateObject(session, BLIND_WRITE);
  }

  /** Destroys what {@link writeBlindly} wrote (found afresh: a module re-initialisation changes handles). */
  removeBlindWrites(): void {
    this.withSession((session) => {
      this.lib.C_FindObjectsInit(session, BLIND_WRITE);
      let found: Buffer[];
      try {
        found = this.lib.C_FindObjects(session, 16);
      } finally {
        this.lib.C_FindObjectsFinal(session);
      }
      for (const handle of found) this.lib.C_DestroyObject(session, handle);
    });
  }

  /** Creates an object from raw attributes (a key whose value a test knows). */
  createObject(session: Buffer, template: pkcs11.Template): Buffer {
    return this.lib.C_CreateObject(session, template);
  }

  destroy(session: Buffer, handle: Buffer): void {
    this.lib.C_DestroyObject(session, handle);
  }

  /** Closes every session of this process on the token, the service's pool included. */
  closeAllSessions(): void {
    this.lib.C_CloseAllSessions(this.slot());
  }

  /** Finalises the library for the whole process, as a device reset would. */
  finalize(): void {
    this.lib.C_Finalize();
  }
}
