/**
 * graphene-pk11 against raw pkcs11js calls, same process, one SoftHSM session, the same CMK: each
 * operation of the data key path timed both ways in rounds, A and B taking turns to go first, so
 * that the machine's noise falls on both alike. Prints one JSON line: per operation the median
 * wall time and CPU time (process.cpuUsage, which counts libuv's threads too) in µs per call.
 *
 * What graphene does more than the raw call, read from node_modules/graphene-pk11/build/cjs:
 * - `session.createCipher(alg, key)` / `createDecipher` build a Cipher/Decipher object, run
 *   `Mechanism.create(alg)` (the name looked up in MechanismEnum after toUpperCase, then
 *   `params.toCKI()`, a fresh object) and call C_EncryptInit / C_DecryptInit synchronously;
 * - `Cipher.once(data, out)` copies the data first (`Buffer.from(data)`), then C_Encrypt;
 *   `once(data, out, cb)` is pkcs11js' callback form, C_EncryptAsync without util.promisify;
 *   `Decipher.once` passes its input as it is;
 * - `session.generateRandom(n)` is `Buffer.alloc(n)` and C_GenerateRandom, as the raw call is;
 * - `session.find(template)` converts the template (each attribute name found by a for-in scan of
 *   graphene's table of about 100 attributes), then calls C_FindObjects one handle at a time until
 *   it answers none (two calls for one match, where the raw form asks for up to 16 in one), and
 *   wraps the handles in a SessionObjectCollection; `.items(0)` makes a SessionObject.
 *
 * Environment: SOFTHSM2_CONF, BENCH_MODULE, BENCH_TOKEN_LABEL, BENCH_PIN_FILE, BENCH_KEY_LABEL,
 * BENCH_ROUNDS, BENCH_ITERATIONS.
 */
import { readFileSync } from 'node:fs';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { benchEnv as env } from './ceiling-answer';


const rounds = Number(env('BENCH_ROUNDS'));
const iterations = Number(env('BENCH_ITERATIONS'));
const module = graphene.Module.load(env('BENCH_MODULE'));
module.initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
const lib = module.lib;
const label = env('BENCH_TOKEN_LABEL');
const slots = module.getSlots(true);
let slot: graphene.Slot | undefined;
for (let i = 0; i < slots.length; i++) if (slots.items(i).getToken().label === label) slot = slots.items(i);
if (!slot) throw new Error(`no token ${label}`);
const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
session.login(readFileSync(env('BENCH_PIN_FILE'), 'utf8').trim(), graphene.UserType.USER);
const handle = session.handle;

// The CMK, found once by label; both sides then use this cached handle (graphene as a SecretKey on it).
lib.C_FindObjectsInit(handle, [
  { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
  { type: pkcs11.CKA_LABEL, value: env('BENCH_KEY_LABEL') },
]);
const [keyHandle] = lib.C_FindObjects(handle, 1);
lib.C_FindObjectsFinal(handle);
if (!keyHandle) throw new Error(`no key ${env('BENCH_KEY_LABEL')}`);
const key = new graphene.SecretKey(keyHandle, session, lib);
// CKA_ID as the service finds a key's material (src/hsm/templates.ts findMaterialTemplate).
const [idAttribute] = lib.C_GetAttributeValue(handle, keyHandle, [{ type: pkcs11.CKA_ID }]);
const keyObjectId = idAttribute!.value as Buffer;

const iv = lib.C_GenerateRandom(handle, Buffer.alloc(12));
const aad = Buffer.from('huawei-kms-compatible/datakey/v1 bench additional data, about as long as the service binds');
const dataKey = lib.C_GenerateRandom(handle, Buffer.alloc(32));
/** As the service builds it per call (src/hsm/templates.ts gcmMechanism). */
const rawMechanism = (): pkcs11.Mechanism => {
  const parameter: pkcs11.AesGCM = { type: pkcs11.CK_PARAMS_AES_GCM_v240, iv, aad, ivBits: 96, tagBits: 128 };
  return { mechanism: pkcs11.CKM_AES_GCM, parameter };
};
const grapheneAlgorithm = (): graphene.IAlgorithm => ({ name: 'AES_GCM', params: new graphene.AesGcm240Params(iv, aad, 128) });
lib.C_EncryptInit(handle, rawMechanism(), keyHandle);
const sealed = Buffer.from(lib.C_Encrypt(handle, dataKey, Buffer.alloc(32 + 16)));

/** One operation both ways; `check` sees each result once, so that a wrong call cannot pass for a fast one. */
interface Pair {
  readonly name: string;
  readonly graphene: () => unknown;
  readonly raw: () => unknown;
}

const callback = <T>(start: (cb: (error: Error | null, value: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))));

const pairs: Pair[] = [
  {
    name: 'encrypt 32 B, sync',
    graphene: () => session.createCipher(grapheneAlgorithm(), key).once(dataKey, Buffer.alloc(48)),
    raw: () => {
      lib.C_EncryptInit(handle, rawMechanism(), keyHandle);
      return lib.C_Encrypt(handle, dataKey, Buffer.alloc(48));
    },
  },
  {
    name: 'encrypt 32 B, async',
    graphene: () => callback<Buffer>((cb) => session.createCipher(grapheneAlgorithm(), key).once(dataKey, Buffer.alloc(48), cb)),
    raw: () => {
      lib.C_EncryptInit(handle, rawMechanism(), keyHandle);
      return lib.C_EncryptAsync(handle, dataKey, Buffer.alloc(48));
    },
  },
  {
    name: 'decrypt 32 B, sync',
    graphene: () => session.createDecipher(grapheneAlgorithm(), key).once(sealed, Buffer.alloc(48)),
    raw: () => {
      lib.C_DecryptInit(handle, rawMechanism(), keyHandle);
      return lib.C_Decrypt(handle, sealed, Buffer.alloc(48));
    },
  },
  {
    name: 'decrypt 32 B, async',
    graphene: () => callback<Buffer>((cb) => session.createDecipher(grapheneAlgorithm(), key).once(sealed, Buffer.alloc(48), cb)),
    raw: () => {
      lib.C_DecryptInit(handle, rawMechanism(), keyHandle);
      return lib.C_DecryptAsync(handle, sealed, Buffer.alloc(48));
    },
  },
  { name: 'random 44 B', graphene: () => session.generateRandom(44), raw: () => lib.C_GenerateRandom(handle, Buffer.alloc(44)) },
  {
    name: 'find by CKA_ID',
    graphene: () => session.find({ class: graphene.ObjectClass.SECRET_KEY, token: true, id: keyObjectId }).items(0).handle,
    raw: () => {
      lib.C_FindObjectsInit(handle, [
        { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
        { type: pkcs11.CKA_TOKEN, value: true },
        { type: pkcs11.CKA_ID, value: keyObjectId },
      ]);
      try {
        return lib.C_FindObjects(handle, 16)[0];
      } finally {
        lib.C_FindObjectsFinal(handle);
      }
    },
  },
];

/** Checks that both sides answer alike (the same plaintext back, the same handle) before timing them. */
async function check(pair: Pair): Promise<void> {
  const [a, b] = [await pair.graphene(), await pair.raw()];
  if (!(a instanceof Buffer) || !(b instanceof Buffer) || a.length !== b.length) throw new Error(`${pair.name}: graphene and raw answer differently`);
  if (pair.name.startsWith('decrypt') && !(a.equals(dataKey) && b.equals(dataKey))) throw new Error(`${pair.name}: wrong plaintext`);
  if (pair.name.startsWith('find') && !(a.equals(keyHandle!) && b.equals(keyHandle!))) throw new Error(`${pair.name}: wrong handle`);
}

/** `iterations` calls one after another (each awaited when it returns a promise): µs per call, wall and CPU. */
async function time(work: () => unknown): Promise<{ wallUs: number; cpuUs: number }> {
  const cpu = process.cpuUsage();
  const began = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const result = work();
    if (result instanceof Promise) await result;
  }
  const wallUs = Number(process.hrtime.bigint() - began) / 1000 / iterations;
  const used = process.cpuUsage(cpu);
  return { wallUs, cpuUs: (used.user + used.system) / iterations };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main(): Promise<void> {
  for (const pair of pairs) await check(pair);
  const samples = new Map(pairs.map((pair) => [pair.name, { graphene: [] as Array<{ wallUs: number; cpuUs: number }>, raw: [] as Array<{ wallUs: number; cpuUs: number }> }]));
  // A first round unrecorded: JIT and the module's caches warm for both.
  for (let round = -1; round < rounds; round++) {
    for (const pair of pairs) {
      const own = samples.get(pair.name)!;
      const order = round % 2 === 0 ? (['graphene', 'raw'] as const) : (['raw', 'graphene'] as const);
      for (const side of order) {
        const result = await time(pair[side]);
        if (round >= 0) own[side].push(result);
      }
    }
  }
  const round2 = (value: number): number => Math.round(value * 100) / 100;
  const results = pairs.map((pair) => {
    const own = samples.get(pair.name)!;
    const summary = (side: 'graphene' | 'raw') => ({ wallUs: round2(median(own[side].map((s) => s.wallUs))), cpuUs: round2(median(own[side].map((s) => s.cpuUs))) });
    return { operation: pair.name, graphene: summary('graphene'), raw: summary('raw') };
  });
  process.stdout.write(`${JSON.stringify({ rounds, iterations, results })}\n`);
  lib.C_Logout(handle);
  session.close();
  module.finalize();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
