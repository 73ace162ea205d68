/**
 * The HTTP layer alone, for `npm run bench` (--http-layer): BENCH_HTTP_LAYER picks the server.
 *  - express: the service's own app (src/app.ts: request id, body with raw bytes, authentication,
 *    express-openapi-validator, authorisation, audit, reply) on node:http as the service serves it
 *    (req/res born with the app's prototypes, src/http/express-classes.ts), with stub dependencies:
 *    an authenticator that accepts every request, an audit sink that keeps nothing, and a
 *    create-datakey that returns a fixed answer (no HSM, no database).
 *  - express-swapped: the same on node's own req/res, whose prototypes Express swaps per request
 *    (as the service served it before issue 21's third pass).
 *  - bare: a node:http stub that reads the body, parses it and answers the same fixed JSON.
 */
import { createServer } from 'node:http';
import { buildApp } from '../src/app';
import type { AuditSink } from '../src/audit/audit-sink';
import type { DataOperationsDeps } from '../src/http/routes/data';
import { expressHttpClasses } from '../src/http/express-classes';
import type { Authenticator } from '../src/identity/authenticator';
import type { Principal } from '../src/kms/context';
import type { DataKeyService } from '../src/kms/datakey-service';
import type { GrantService } from '../src/kms/grant-service';
import type { KeyService } from '../src/kms/key-service';
import type { QuotaService } from '../src/kms/quota-service';
import type { RotationService } from '../src/kms/rotation-service';
import type { SigningService } from '../src/kms/signing-service';
import type { MacService } from '../src/kms/mac-service';
import type { KeyAgreementService } from '../src/kms/key-agreement-service';
import type { AliasService } from '../src/kms/alias-service';
import type { DataKeyPairService } from '../src/kms/datakey-pair-service';
import type { TagService } from '../src/kms/tag-service';
import type { ImportService } from '../src/kms/import-service';
import { createLogger } from '../src/logger';
import { Readiness } from '../src/health/readiness';

const ANSWER = { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f', plain_text: 'ab'.repeat(64), cipher_text: 'cd'.repeat(124) };
const PRINCIPAL: Principal = { kind: 'token', id: 'bench', projectId: process.env.BENCH_PROJECT_ID ?? 'bench', actions: ['kms:*'] };
const layer = process.env.BENCH_HTTP_LAYER ?? 'express';

async function expressStub(bornWithPrototypes: boolean): Promise<void> {
  // Stubs of the interfaces the app calls; nothing else of them is reached.
  const dataKeys = { createDataKey: () => Promise.resolve(ANSWER) } as unknown as DataKeyService;
  const authenticator = { authenticate: () => Promise.resolve(PRINCIPAL) } as unknown as Authenticator;
  const done = Promise.resolve(undefined);
  const audit: AuditSink = { checkWritable() {}, append: () => done, authenticationFailed() {}, close: () => done };
  const logger = createLogger('info');
  const readiness = new Readiness({ hsm: { ping: () => Promise.resolve() }, database: () => done, audit() {}, draining: () => false, deadlineMs: 1000, logger });
  const stubs = { keys: {} as KeyService, grants: {} as GrantService, quotas: {} as QuotaService, dataOperations: {} as DataOperationsDeps, rotation: {} as RotationService, signing: {} as SigningService, macs: {} as MacService, keyAgreement: {} as KeyAgreementService, aliases: {} as AliasService, dataKeyPairs: {} as DataKeyPairService, tags: {} as TagService, imports: {} as ImportService };
  const app = await buildApp({ ...stubs, dataKeys, authenticator, audit, logger, readiness, bodyLimitBytes: 65536 });
  const server = createServer({ requireHostHeader: false, ...(bornWithPrototypes ? expressHttpClasses(app) : {}) }, app);
  listen(server);
}

function bareStub(): void {
  const text = JSON.stringify(ANSWER);
  listen(
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
      });
    }),
  );
}

function listen(server: ReturnType<typeof createServer>): void {
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ listening: server.address() })}\n`);
  });
}

if (layer === 'bare') bareStub();
else void expressStub(layer === 'express');
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
