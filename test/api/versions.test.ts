import { readFileSync } from 'node:fs';
import { expectKmsError, fetchResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';

/** The version documents: read without a credential, as the API defines them. */

const t = useTestService();

const v1 = (base: string): unknown => ({
  id: 'v1.0',
  links: [{ href: `${base}/v1.0/`, rel: 'self' }],
  version: '',
  status: 'CURRENT',
  updated: '2018-09-05T08:18:05Z',
  min_version: '',
});

describe('GET / and GET /v1.0', () => {
  it('list the one version, v1.0, without a credential', async () => {
    const response = await fetchResponse(`${t.service.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.body).toEqual({ versions: [v1(t.service.url)] });
  });

  it('describe v1.0, at /v1.0 and at the /v1.0/ the list links to', async () => {
    for (const path of ['/v1.0', '/v1.0/']) {
      const response = await fetchResponse(`${t.service.url}${path}`);
      expect({ path, status: response.status, body: response.body }).toEqual({ path, status: 200, body: { version: v1(t.service.url) } });
    }
  });

  it('link to the address the client used (its Host header)', async () => {
    const { request } = await import('node:http');
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(`${t.service.url}/`, { headers: { host: 'kms.example.com:8443' } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body).versions[0].links).toEqual([{ href: 'http://kms.example.com:8443/v1.0/', rel: 'self' }]);
  });

  it('do not look at a credential sent along, even a wrong one, and leave no audit line', async () => {
    const response = await fetchResponse(`${t.service.url}/v1.0`, { headers: { 'x-auth-token': 'kmst-not-a-real-token' } });
    expect(response.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(readFileSync(t.config.auditLogPath, 'utf8')).not.toContain(response.headers.get('x-request-id')!);
  });

  it('refuse a query parameter (KMS.0308), and another method (KMS.0215, once authenticated: only the GET is public)', async () => {
    expectKmsError(await fetchResponse(`${t.service.url}/?limit=1`), 400, 'KMS.0308');
    expectKmsError(await fetchResponse(`${t.service.url}/v1.0`, { method: 'DELETE' }), 401, 'APIGW.0301');
    expectKmsError(await fetchResponse(`${t.service.url}/v1.0`, { method: 'DELETE', headers: { 'x-auth-token': await t.token() } }), 405, 'KMS.0215');
  });

  it('leave every other path behind authentication: GET /v2.0 without a credential is 401', async () => {
    expectKmsError(await fetchResponse(`${t.service.url}/v2.0`), 401, 'APIGW.0301');
    expectKmsError(await fetchResponse(`${t.service.url}/v1.0/project-a/kms/user-quotas`), 401, 'APIGW.0301');
  });
});
