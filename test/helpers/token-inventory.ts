/**
 * Lists what a SoftHSM token holds, read through a PKCS#11 handle of its own: run as a process of
 * its own (`tsx test/helpers/token-inventory.ts LABEL PIN_FILE`, with SOFTHSM2_CONF naming the
 * token directory's configuration), because the SoftHSM library reads its configuration once per
 * process and a Jest worker's is the test run's. Prints JSON: how many tokens carry the label, and
 * the CKA_LABEL of every persistent secret key on the token.
 *
 * It is deliberately independent of the service's HSM layer (no handle cache, no label parsing):
 * tests compare what it sees with the service's database.
 */
import { readFileSync } from 'node:fs';
import * as pkcs11 from 'pkcs11js';
import { DEFAULT_SOFTHSM_MODULE } from '../../src/config';
import { tokenLabelOf } from './token-label';

export interface TokenInventory {
  /** Initialised tokens whose label is the one asked for (one, unless a start made two). */
  readonly tokens: number;
  /** CKA_LABEL of every persistent secret key on the (first) token. */
  readonly secretKeyLabels: string[];
}

function inventory(tokenLabel: string, pin: string): TokenInventory {
  const lib = new pkcs11.PKCS11();
  lib.load(DEFAULT_SOFTHSM_MODULE);
  lib.C_Initialize();
  try {
    const slots = lib.C_GetSlotList(true).filter((slot) => tokenLabelOf(lib, slot) === tokenLabel);
    const slot = slots[0];
    if (!slot) return { tokens: 0, secretKeyLabels: [] };
    const session = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION);
    try {
      // CMKs are private objects: only a logged-in session sees them.
      lib.C_Login(session, pkcs11.CKU_USER, pin);
      lib.C_FindObjectsInit(session, [
        { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
        { type: pkcs11.CKA_TOKEN, value: true },
      ]);
      const handles: Buffer[] = [];
      try {
        for (let batch = lib.C_FindObjects(session, 1000); batch.length > 0; batch = lib.C_FindObjects(session, 1000)) handles.push(...batch);
      } finally {
        lib.C_FindObjectsFinal(session);
      }
      const secretKeyLabels = handles.map((handle) => {
        const [label] = lib.C_GetAttributeValue(session, handle, [{ type: pkcs11.CKA_LABEL }]);
        return label?.value instanceof Buffer ? label.value.toString('utf8') : '';
      });
      return { tokens: slots.length, secretKeyLabels };
    } finally {
      lib.C_CloseSession(session);
    }
  } finally {
    lib.C_Finalize();
  }
}

if (require.main === module) {
  const [tokenLabel, pinFile] = process.argv.slice(2);
  if (!tokenLabel || !pinFile) {
    process.stderr.write('usage: token-inventory.ts TOKEN_LABEL PIN_FILE\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(inventory(tokenLabel, readFileSync(pinFile, 'utf8').trim()))}\n`);
}
