import Database from 'better-sqlite3';
import { CREDENTIAL_SEALING_KEY } from '../../src/hsm/system-keys';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

/**
 * What the authenticator makes of failures that are not the caller's: a server fault is a 500 or
 * 503 logged at error level, never the "wrong credentials" 401 that would hide it.
 */

const t = useTestService();

async function signedClient(projectId = 'project-a') {
  const issued = await t.service.credentials.createAccessKey({ projectId, actions: ['kms:*'] });
  return { accessKey: issued.access_key, sdk: sdkClient({ endpoint: t.service.url, projectId, ak: issued.access_key, sk: issued.secret_key }) };
}

/** The service's log lines at error level (pino: 50) that mention `text`. */
function errorsLogged(text: string): Array<Record<string, unknown>> {
  return t.logs.lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.level === 50 && JSON.stringify(line).includes(text));
}

describe('authentication when the secret key cannot be unsealed', () => {
  it('a sealed secret whose database row was altered is refused like a wrong one (401)', async () => {
    const { accessKey, sdk } = await signedClient();
    const db = new Database(t.config.databasePath);
    try {
      const row = db.prepare<[string], { sealed_secret: Buffer }>('SELECT sealed_secret FROM credentials WHERE id = ?').get(accessKey)!;
      const altered = Buffer.from(row.sealed_secret);
      altered[altered.length - 1]! ^= 0x01; // one bit of the GCM tag
      db.prepare('UPDATE credentials SET sealed_secret = ? WHERE id = ?').run(altered, accessKey);
    } finally {
      db.close();
    }
    expect(await sdk.call('list-keys', {})).toMatchObject({ status: 401, errorCode: 'APIGW.0301' });
  });

  // Last in this file: the credential-sealing key is gone afterwards.
  it('a missing credential-sealing key is a server fault: 500 KMS.0103, logged at error level', async () => {
    const { sdk } = await signedClient();
    const side = new SideChannel(t.config.hsm);
    side.withSession((session) => side.destroy(session, side.findKey(session, CREDENTIAL_SEALING_KEY)!));

    const response = await sdk.call('list-keys', {});
    expect(response).toMatchObject({ status: 500, errorCode: 'KMS.0103' });
    expect(response.errorMsg).not.toContain(CREDENTIAL_SEALING_KEY.keyId);
    expect(errorsLogged('request failed').filter((line) => line.code === 'KMS.0103')).toHaveLength(1);
  });
});
