/** Signed setup calls to the service (the load itself goes through autocannon, bench/load.ts). */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { signedHeaders, type Credential } from './load';

/** POSTs a signed request to the service and resolves with its 200 body. */
export function call(url: string, credential: Credential, operation: string, body: unknown): Promise<Record<string, unknown>> {
  const path = `/v1.0/${credential.projectId}/kms/${operation}`;
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}${path}`, { method: 'POST', headers: signedHeaders(url, credential, path, text) }, (response) => {
      let data = '';
      response.on('data', (chunk: Buffer) => (data += chunk.toString()));
      response.on('end', () =>
        response.statusCode === 200 ? resolve(JSON.parse(data) as Record<string, unknown>) : reject(new Error(`${operation}: ${response.statusCode} ${data}`)),
      );
    });
    outgoing.on('error', reject);
    outgoing.end(text);
  });
}

/** The bodies of the five measured operations, for one CMK. */
export async function workload(url: string, credential: Credential, keyId: string): Promise<Array<{ endpoint: string; body: string }>> {
  const sealed = (await call(url, credential, 'create-datakey', { key_id: keyId })) as { cipher_text: string };
  const dek = Buffer.alloc(32, 7);
  const plainText = dek.toString('hex') + createHash('sha256').update(dek).digest('hex');
  return [
    { endpoint: 'create-datakey', body: JSON.stringify({ key_id: keyId }) },
    { endpoint: 'create-datakey-without-plaintext', body: JSON.stringify({ key_id: keyId }) },
    { endpoint: 'encrypt-datakey', body: JSON.stringify({ key_id: keyId, plain_text: plainText, datakey_plain_length: '32' }) },
    { endpoint: 'decrypt-datakey', body: JSON.stringify({ key_id: keyId, cipher_text: sealed.cipher_text, datakey_cipher_length: '32' }) },
    { endpoint: 'describe-key', body: JSON.stringify({ key_id: keyId }) },
  ];
}

/** The same, by endpoint. */
export async function workloadBodies(url: string, credential: Credential, keyId: string): Promise<Map<string, string>> {
  return new Map((await workload(url, credential, keyId)).map(({ endpoint, body }) => [endpoint, body]));
}
