/**
 * The HSM work of a create-datakey answer two ways, in one process on one SoftHSM token and CMK,
 * without HTTP: through the service's HSM seam (Pkcs11Hsm: the random pool, the session runner,
 * the key-object cache, graphene's Cipher) and as the ceiling does it (raw pkcs11js on one session,
 * the handle found once). Both build the same answer: the additional data (binding.ts), the data
 * key, one AES-256-GCM encryption, the blob (blob-codec.ts) and the JSON of upper-case hex. Timed in
 * rounds, the two taking turns to go first; prints one JSON line with the median CPU µs per answer
 * of each (process.cpuUsage). At one connection over HTTP the same comparison is the difference of
 * two round trips about five times its size, and swings with the machine's noise; here it does not.
 *
 * Environment: SOFTHSM2_CONF, BENCH_MODULE, BENCH_TOKEN_LABEL, BENCH_PIN_FILE, BENCH_KEY_LABEL,
 * BENCH_PROJECT_ID, BENCH_SESSIONS, BENCH_ROUNDS, BENCH_ITERATIONS.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { Pkcs11Hsm } from '../src/hsm/pkcs11-hsm';
import { encodeBinding, type Binding } from '../src/kms/binding';
import { encodeBlob } from '../src/kms/blob-codec';
import { benchEnv as env, ceilingAnswer, datakeyAnswer, openCeilingSession } from './ceiling-answer';

const rounds = Number(env('BENCH_ROUNDS'));
const iterations = Number(env('BENCH_ITERATIONS'));
const [, keyId, version] = env('BENCH_KEY_LABEL').split('/') as [string, string, string];
const ref = { keyId, version: Number(version.slice(1)) };
const binding: Binding = { purpose: 'datakey', keyId, materialVersion: ref.version, projectId: env('BENCH_PROJECT_ID'), context: '', aad: '' };

async function main(): Promise<void> {
  const pin = readFileSync(env('BENCH_PIN_FILE'), 'utf8').trim();
  const hsm = await Pkcs11Hsm.open({ modulePath: env('BENCH_MODULE'), tokenLabel: env('BENCH_TOKEN_LABEL'), pin, sessions: Number(env('BENCH_SESSIONS')), logger: pino({ level: 'silent' }) });
  const ceilingSession = openCeilingSession();
  const projectId = env('BENCH_PROJECT_ID');
  const ceiling = async (): Promise<string> => ceilingAnswer(ceilingSession, keyId, projectId);
  const seam = async (): Promise<string> => {
    const aad = encodeBinding(binding);
    const dataKey = await hsm.random(32);
    const sealed = await hsm.symmetric.encrypt(ref, dataKey, aad);
    const body = datakeyAnswer(keyId, dataKey, encodeBlob({ keyId, materialVersion: ref.version, ...sealed }));
    dataKey.fill(0);
    return body;
  };
  const cpuUsPerCall = async (work: () => Promise<string>): Promise<number> => {
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i++) await work();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / iterations;
  };
  // Both paths warm (the JIT, the seam's handle cache, the random pool) before anything counts.
  for (let i = 0; i < Math.min(iterations, 2000); i++) {
    await ceiling();
    await seam();
  }
  const measured = { seam: [] as number[], ceiling: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['seam', 'ceiling'] as const) : (['ceiling', 'seam'] as const);
    for (const name of order) measured[name].push(await cpuUsPerCall(name === 'seam' ? seam : ceiling));
  }
  ceilingSession.lib.C_CloseSession(ceilingSession.session);
  await hsm.close();
  const median = (values: number[]): number => Math.round([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]! * 10) / 10;
  process.stdout.write(`${JSON.stringify({ seamCpuUs: median(measured.seam), ceilingCpuUs: median(measured.ceiling), rounds: measured })}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
