import * as pkcs11 from 'pkcs11js';
import { DEFAULT_SOFTHSM_MODULE } from '../../src/config';
import type { MaterialRef } from '../../src/hsm/hsm';
import { findMaterialTemplate } from '../../src/hsm/templates';

/**
 * A second handle on the SoftHSM library the service has loaded in this process: PKCS#11 state is
 * per process, so what this does to sessions or the module, the service sees too. Tests use it to
 * look at the token from outside and to break things behind the service's back, as a crashed
 * device or another process sharing the token would.
 */
export class SideChannel {
  private readonly lib = new pkcs11.PKCS11();

  constructor(private readonly tokenLabel: string) {
    this.lib.load(DEFAULT_SOFTHSM_MODULE);
    this.initialize();
  }

  initialize(): void {
    try {
      this.lib.C_Initialize();
    } catch (error) {
      if (!(error instanceof pkcs11.Pkcs11Error && error.code === pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) throw error;
    }
  }

  slot(): Buffer {
    for (const slot of this.lib.C_GetSlotList(true)) {
      if (this.lib.C_GetTokenInfo(slot).label.replace(/\0+$/, '').trim() === this.tokenLabel) return slot;
    }
    throw new Error(`token ${this.tokenLabel} not found`);
  }

  /** Runs `work` in a fresh read-write session of the token (the service's login covers it). */
  withSession<T>(work: (session: Buffer) => T): T {
    const session = this.lib.C_OpenSession(this.slot(), pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    try {
      return work(session);
    } finally {
      this.lib.C_CloseSession(session);
    }
  }

  findKey(session: Buffer, ref: MaterialRef): Buffer | undefined {
    this.lib.C_FindObjectsInit(session, findMaterialTemplate(ref));
    try {
      return this.lib.C_FindObjects(session, 1)[0];
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
