import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import * as graphene from 'graphene-pk11';
import { TokenLock } from '../../src/hsm/token-lock';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

/**
 * A token shared with processes outside the service's token lock (another instance, a vendor
 * tool): when the token does not show a key, the HSM layer re-reads the token before it calls the
 * key missing, because a module's view of a shared token can lag behind other processes' writes.
 */

const run = promisify(execFile);
const t = useTestService();
let side: SideChannel;

beforeAll(() => {
  side = new SideChannel(t.config.hsm);
});

/** Generates material for `keyIds` in another process that shares the token. */
async function writeElsewhere(keyIds: string[]): Promise<void> {
  const pinFile = path.join(t.dataDir, 'softhsm', 'user.pin');
  await run(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'helpers', 'token-writer.ts'), t.config.hsm.tokenLabel, pinFile, ...keyIds]);
}

describe('a key another process put in the shared token', () => {
  it('is found even when this process wrote to the token after it, without looking', async () => {
    const ref = { keyId: randomUUID(), version: 0 };
    const session = side.openSession();
    await writeElsewhere([ref.keyId]);
    // This process's SoftHSM now misses the other's object (see SideChannel.writeBlindly).
    side.writeBlindly(session);
    try {
      expect(side.findKey(session, ref)).toBeUndefined();
      side.closeSession(session);

      const sealed = await t.service.hsm.symmetric.encrypt(ref, Buffer.from('shared'), Buffer.alloc(0));
      expect((await t.service.hsm.symmetric.decrypt(ref, sealed, Buffer.alloc(0))).toString()).toBe('shared');
      expect(t.logs.text).toContain('key material not found: re-reading the token before answering');
    } finally {
      side.removeBlindWrites();
    }
  });

  it('replaces a cached handle whose object another process destroyed and made again', async () => {
    const ref = { keyId: randomUUID(), version: 0 };
    await t.service.hsm.generateKey(ref);
    await t.service.hsm.symmetric.encrypt(ref, Buffer.from('first'), Buffer.alloc(0)); // its handle is cached now
    side.withSession((session) => side.destroy(session, side.findKey(session, ref)!));
    await writeElsewhere([ref.keyId]);
    // The cached handle names nothing now: one fresh lookup, then (this process's view lagging) a re-read.
    const sealed = await t.service.hsm.symmetric.encrypt(ref, Buffer.from('second'), Buffer.alloc(0));
    expect((await t.service.hsm.symmetric.decrypt(ref, sealed, Buffer.alloc(0))).toString()).toBe('second');
  });

  it('is still missing (404) when the re-read does not show it either', async () => {
    await expect(t.service.hsm.symmetric.encrypt({ keyId: randomUUID(), version: 0 }, Buffer.from('x'), Buffer.alloc(0))).rejects.toMatchObject({
      code: 'KMS.0207',
    });
    expect(await t.service.hsm.hasKey({ keyId: randomUUID(), version: 0 })).toBe(false);
  });
});

describe('a new key (a fresh key id)', () => {
  it('is made without a search of the token, whose cost grows with its objects', async () => {
    await t.service.hsm.generateKey({ keyId: randomUUID(), version: 0 }); // the process knows a key now
    const finds = jest.spyOn(graphene.Session.prototype, 'find');
    try {
      const ref = { keyId: randomUUID(), version: 0 };
      await t.service.hsm.generateKey(ref, 'AES_256', { fresh: true });
      expect(finds).not.toHaveBeenCalled();
      const sealed = await t.service.hsm.symmetric.encrypt(ref, Buffer.from('fresh'), Buffer.alloc(0));
      expect((await t.service.hsm.symmetric.decrypt(ref, sealed, Buffer.alloc(0))).toString()).toBe('fresh');
      // A key id that may have material already is looked for first, as before.
      await t.service.hsm.generateKey({ keyId: randomUUID(), version: 0 });
      expect(finds).toHaveBeenCalled();
    } finally {
      finds.mockRestore();
    }
  });

  it('still leaves this process seeing what another process wrote before it', async () => {
    await t.service.hsm.generateKey({ keyId: randomUUID(), version: 0 });
    const before = { keyId: randomUUID(), version: 0 };
    await writeElsewhere([before.keyId]);
    // This write moves the token's generation counter: without a look first, this process's SoftHSM
    // would skip past the other's object and need a re-read of the whole token to find it.
    await t.service.hsm.generateKey({ keyId: randomUUID(), version: 0 }, 'AES_256', { fresh: true });
    const rereads = t.service.hsm.state().rereads;
    const sealed = await t.service.hsm.symmetric.encrypt(before, Buffer.from('seen'), Buffer.alloc(0));
    expect((await t.service.hsm.symmetric.decrypt(before, sealed, Buffer.alloc(0))).toString()).toBe('seen');
    expect(t.service.hsm.state().rereads).toBe(rereads);
  });
});

describe('a key whose object was destroyed behind the service\'s back', () => {
  it('costs one re-read of the token, not one per request, until the token changes; then it is found again', async () => {
    const ref = { keyId: randomUUID(), version: 0 };
    await t.service.hsm.generateKey(ref);
    await t.service.hsm.symmetric.encrypt(ref, Buffer.from('cached'), Buffer.alloc(0)); // its handle is cached now
    side.withSession((session) => side.destroy(session, side.findKey(session, ref)!));
    const rereads = t.service.hsm.state().rereads;
    await expect(t.service.hsm.symmetric.encrypt(ref, Buffer.from('x'), Buffer.alloc(0))).rejects.toMatchObject({ code: 'KMS.0207' });
    expect(t.service.hsm.state().rereads).toBe(rereads + 1);

    const finds = jest.spyOn(graphene.Session.prototype, 'find');
    try {
      for (let request = 0; request < 4; request++) {
        await expect(t.service.hsm.symmetric.encrypt(ref, Buffer.from('x'), Buffer.alloc(0))).rejects.toMatchObject({ code: 'KMS.0207' });
      }
      // Answered from memory: neither a search of the token nor a re-read.
      expect(finds).not.toHaveBeenCalled();
      expect(t.service.hsm.state().rereads).toBe(rereads + 1);
    } finally {
      finds.mockRestore();
    }

    // Another process of the service makes the material again, under the token lock (as every process of the service writes).
    const otherProcess = new TokenLock(t.config.hsmLockPath);
    try {
      await otherProcess.hold(() => writeElsewhere([ref.keyId]));
    } finally {
      otherProcess.close();
    }
    const sealed = await t.service.hsm.symmetric.encrypt(ref, Buffer.from('back'), Buffer.alloc(0));
    expect((await t.service.hsm.symmetric.decrypt(ref, sealed, Buffer.alloc(0))).toString()).toBe('back');
  });
});
