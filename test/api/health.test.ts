/**
 * GET /healthz and /readyz: no credential, never audited; readiness follows the HSM (through the
 * fault shim), the audit log and shutdown.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import Ajv from 'ajv';
import { createLogger } from '../../src/logger';
import { loadOpenApiDocument } from '../../src/openapi-spec';
import { startService } from '../../src/server';
import { fetchResponse, kmsClient, type KmsResponse } from '../helpers/client';
import { eventually } from '../helpers/eventually';
import { RawConnection } from '../helpers/raw-http';
import { useTestService } from '../helpers/service';
import { startShimService, type ShimService } from '../helpers/shim-service';

const CKR_DEVICE_ERROR = 0x30;

/** Each probe's body against openapi.yaml's schema for it. */
const ajv = new Ajv({ strict: false });
ajv.addSchema(loadOpenApiDocument() as object, 'openapi.yaml');
const healthSchema = ajv.compile({ $ref: 'openapi.yaml#/components/schemas/HealthResponse' });
const readinessSchema = ajv.compile({ $ref: 'openapi.yaml#/components/schemas/ReadinessResponse' });

async function probe(url: string, path: '/healthz' | '/readyz'): Promise<KmsResponse> {
  const response = await fetchResponse(`${url}${path}`);
  const schema = path === '/healthz' ? healthSchema : readinessSchema;
  if (!schema(response.body)) throw new Error(`${path} answered a body openapi.yaml does not describe: ${JSON.stringify(response.body)} (${ajv.errorsText(schema.errors)})`);
  return response;
}

/** Polls /readyz until `until` holds of its answer (at most 20 s): a condition, never a fixed sleep. */
function readyzUntil(url: string, what: string, until: (response: KmsResponse) => boolean): Promise<KmsResponse> {
  return eventually(`/readyz to answer ${what}`, () => probe(url, '/readyz'), { until, limitMs: 20_000, everyMs: 50 });
}

const ALL_OK = { hsm: 'ok', database: 'ok', audit: 'ok' };

describe('the health probes of a running service', () => {
  const t = useTestService();

  it('answer without a credential, name each check, and are not in the audit trail', async () => {
    const auditBefore = readFileSync(t.config.auditLogPath, 'utf8');
    const health = await probe(t.service.url, '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    const ready = await probe(t.service.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: ALL_OK });
    expect(ready.headers.get('cache-control')).toBe('no-store');

    // An API call is audited, in the same turn as the probes were answered: only its line is new.
    const listed = await t.client().call('list-keys');
    expect(listed.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const added = readFileSync(t.config.auditLogPath, 'utf8').slice(auditBefore.length).split('\n').filter(Boolean);
    expect(added).toHaveLength(1);
    expect(JSON.parse(added[0]!)).toMatchObject({ action: 'list-keys', request_id: listed.headers.get('x-request-id') });
    expect(added[0]).not.toMatch(/healthz|readyz/);
  });

  it('are not in the access log, and their answer names no key or credential', async () => {
    const before = t.logs.lines.length;
    const ready = await probe(t.service.url, '/readyz');
    expect(JSON.stringify(ready.body)).not.toMatch(/[0-9a-f]{32}|token|secret|pin/i);
    expect(t.logs.lines.slice(before).join('')).not.toMatch(/readyz/);
  });

  it('answer 503 "draining" once shutdown has begun', async () => {
    const connection = await RawConnection.open(t.service.url);
    try {
      connection.write('GET /readyz HTTP/1.1\r\nHost: kms\r\n\r\n');
      expect((await connection.response()).status).toBe(200);
      // A request under way on a kept-alive connection, as a load balancer's is when SIGTERM
      // arrives: its last line is sent once the service has begun to stop.
      connection.write('GET /readyz HTTP/1.1\r\nHost: kms\r\n');
      await new Promise((resolve) => setImmediate(resolve));
      const closing = t.service.close();
      connection.write('\r\n');
      const draining = await connection.response();
      expect(draining.status).toBe(503);
      expect(JSON.parse(draining.text)).toEqual({ status: 'draining', checks: ALL_OK });
      await closing;
    } finally {
      connection.close();
    }
    await t.restart();
    expect((await probe(t.service.url, '/readyz')).status).toBe(200);
  });

  it('answer 503 naming the audit check while the audit log cannot be written, healthz 200 meanwhile', async () => {
    await t.service.close();
    // /dev/full takes the file open and refuses every write (ENOSPC), as a full disk does.
    const broken = await startService(t.config, { logger: createLogger('debug', t.logs), clock: t.clock.read, validateResponses: true, auditLogPath: '/dev/full' });
    try {
      const client = kmsClient(broken.url, 'project-a', { 'x-auth-token': (await broken.credentials.createToken({ projectId: 'project-a', actions: ['kms:*'] })).token });
      // The first operation runs (no write has failed yet); its record's write fails, so it is answered 503 too.
      expect((await client.call('list-keys')).status).toBe(503);
      const ready = await probe(broken.url, '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ status: 'not-ready', checks: { hsm: 'ok', database: 'ok', audit: 'failed' } });
      expect((await probe(broken.url, '/healthz')).status).toBe(200);
      expect(t.logs.text).toContain('readiness check failed');
    } finally {
      await expect(broken.close()).rejects.toThrow('could not be written');
    }
    await t.restart();
  });
});

describe('readiness under an HSM fault (through the shim)', () => {
  let shim: ShimService;
  beforeAll(async () => {
    shim = await startShimService();
  });
  afterAll(async () => {
    await shim.stop();
  });

  it('is 503 naming the hsm check while the module fails, healthz 200 meanwhile, and ready again once it answers', async () => {
    expect((await probe(shim.url, '/readyz')).body).toEqual({ status: 'ready', checks: ALL_OK });

    // Every C_GenerateRandom fails, the retry after the service's recovery of the module too.
    shim.fail(CKR_DEVICE_ERROR, 'always', 'C_GenerateRandom');
    const failing = await probe(shim.url, '/readyz');
    expect(failing.status).toBe(503);
    expect(failing.body).toEqual({ status: 'not-ready', checks: { hsm: expect.stringMatching(/^(failed|timeout)$/), database: 'ok', audit: 'ok' } });
    expect(JSON.stringify(failing.body)).not.toContain('CKR');
    expect(await shim.logged('readiness check failed')).toBe(true);
    const health = await probe(shim.url, '/healthz');
    expect(health.status).toBe(200);

    shim.clearFailure();
    const again = await readyzUntil(shim.url, '200', (response) => response.status === 200);
    expect(again.body).toEqual({ status: 'ready', checks: ALL_OK });
    expect(await shim.logged('readiness checks pass again')).toBe(true);

    // No credential was sent, and none of it reached the audit trail.
    const trail = readFileSync(`${shim.dataDir}/audit.log`, 'utf8');
    expect(trail).not.toMatch(/healthz|readyz/);
  });
});

describe('readiness while the HSM hangs (through the shim)', () => {
  // One session, so that a call hung in the HSM leaves none for the probe's ping; a call deadline
  // well past the probe's (min(KMS_PKCS11_CALL_TIMEOUT_MS, 1 s)), so that the session stays taken
  // while the test probes.
  let shim: ShimService;
  beforeAll(async () => {
    shim = await startShimService({ KMS_PKCS11_SESSIONS: '1', KMS_PKCS11_CALL_TIMEOUT_MS: '20000' });
  });
  afterAll(async () => {
    await shim.stop();
  });

  it('is 503 naming the hsm check "timeout" when the HSM does not answer within the probe deadline, and ready again once it answers', async () => {
    const keyId: string = (await shim.kms.call('create-key', { key_alias: 'readiness-hang' })).body.key_info.key_id;
    // The first data key fills the random pool, so that the next one only encrypts.
    expect((await shim.kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
    expect((await probe(shim.url, '/readyz')).body).toEqual({ status: 'ready', checks: ALL_OK });

    writeFileSync(shim.hangFile, 'C_Encrypt\n');
    const hanging = shim.kms.call('create-datakey', { key_id: keyId });
    try {
      await eventually('the C_Encrypt of the data key to hang in the shim', () => shim.hungCalls(), { until: (calls) => calls.includes('C_Encrypt'), everyMs: 10 });
      const timedOut = await probe(shim.url, '/readyz');
      expect({ status: timedOut.status, body: timedOut.body }).toEqual({ status: 503, body: { status: 'not-ready', checks: { hsm: 'timeout', database: 'ok', audit: 'ok' } } });
      // Still hanging: the answer came at the probe's deadline, not when the HSM answered.
      expect(shim.hungCalls()).toEqual(['C_Encrypt']);
      expect((await probe(shim.url, '/healthz')).status).toBe(200);
    } finally {
      rmSync(shim.hangFile, { force: true });
    }
    expect((await hanging).status).toBe(200);
    const again = await readyzUntil(shim.url, '200', (response) => response.status === 200);
    expect(again.body).toEqual({ status: 'ready', checks: ALL_OK });
  });
});
