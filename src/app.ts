import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditSink } from './audit/audit-sink';
import { KmsError } from './errors';
import { AuthenticationFailure, type Authenticator } from './identity/authenticator';
import { auditRecord, auditStart, authFailureOf } from './http/audit-trail';
import { authorise } from './http/authenticate';
import { bodyReader, type ReceivedBody } from './http/body';
import { Contract } from './http/contract';
import { isBodyTooLarge, toKmsError } from './http/error-mapping';
import { InFlight } from './http/in-flight';
import { operationPathOf, type Operation } from './http/operation';
import { replies } from './http/reply';
import { requestLog, type Exchange } from './http/request-log';
import { dataKeyOperations } from './http/routes/datakeys';
import { keyOperations } from './http/routes/keys';
import type { ActedOn } from './kms/context';
import type { DataKeyService } from './kms/datakey-service';
import type { KeyService } from './kms/key-service';
import { loadOpenApiDocument } from './openapi-spec';

export interface AppDeps {
  readonly keys: KeyService;
  readonly dataKeys: DataKeyService;
  readonly authenticator: Authenticator;
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** Check every response against openapi.yaml too (the tests turn this on). */
  readonly validateResponses?: boolean;
  /** Operations under way, for a shutdown that waits for them. */
  readonly inFlight?: InFlight;
}

export type App = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The HTTP application as a function of its dependencies, on plain node:http (Express's
 * per-request cost alone was more than the HSM's, see README "Performance"):
 * request id → body (size-limited, raw bytes kept) → authentication → body errors → the contract
 * of openapi.yaml (operation, method, project id, media type, body) → authorisation → the
 * service call → audit → reply. Every failure is answered by one error reply.
 */
export function buildApp(deps: AppDeps): App {
  const contract = new Contract(loadOpenApiDocument());
  const operations = new Map([...keyOperations(deps.keys), ...dataKeyOperations(deps.dataKeys)].map((op) => [op.name, op]));
  for (const name of operations.keys()) {
    if (!contract.operation(name)) throw new Error(`openapi.yaml does not describe the operation ${name}`);
  }
  const identify = requestLog(deps.logger);
  const readBody = bodyReader(deps.bodyLimitBytes);
  const reply = replies(deps.logger, deps.validateResponses
      ? (operation, status, body) => (operation === undefined ? contract.errorProblem(body) : contract.operation(operation)?.responseProblem(status, body))
      : undefined);
  const inFlight = deps.inFlight ?? new InFlight();

  /** The request's operation, checked against the contract, once its sender is known. */
  const resolve = (req: IncomingMessage, path: string, query: string, body: ReceivedBody): { op: Operation; projectId: string } => {
    const target = operationPathOf(path);
    const op = target && operations.get(target.operation);
    const checks = target && contract.operation(target.operation);
    if (!target || !op || !checks) throw new KmsError('KMS.0201');
    if (req.method !== 'POST') throw new KmsError('KMS.0215');
    checks.checkRequestLine(target.projectId, query);
    checks.checkBody(req.headers['content-type'], body.parsed);
    return { op, projectId: target.projectId };
  };

  /**
   * Check the audit log → authorise → run the service call → audit → reply. The audit record is
   * appended before the response is sent, for failures as for successes, and names the key the
   * service acted on.
   */
  const perform = async (req: IncomingMessage, res: ServerResponse, exchange: Exchange, op: Operation, projectId: string, body: unknown): Promise<void> => {
    const start = auditStart();
    let actedOn: ActedOn | undefined;
    const audit = (status: number, result: string): void =>
      deps.audit.append(
        auditRecord(start, req, op, { projectId, principal: exchange.principal, requestId: exchange.requestId, keyId: actedOn?.keyId ?? null, status, result }),
      );
    // Nothing runs that could not be audited: a refusal here is not recorded (it could not be).
    deps.audit.checkWritable();
    let response: unknown;
    try {
      const ctx = authorise(req, exchange.principal, exchange.requestId, projectId, op.action);
      actedOn = ctx.actedOn;
      response = await inFlight.track(async () => op.run(ctx, body));
    } catch (error) {
      const kmsError = toKmsError(error);
      audit(kmsError.status, kmsError.code);
      throw kmsError;
    }
    audit(200, 'OK');
    reply.json(res, exchange, op.name, 200, response);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, exchange: Exchange): Promise<void> => {
    const body = await readBody(req, res);
    // An oversized body is refused at once; any other bad body only once we know who sent it.
    if (body.error !== undefined && isBodyTooLarge(body.error)) throw body.error;
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const query = queryAt < 0 ? '' : url.slice(queryAt + 1);
    try {
      exchange.principal = await deps.authenticator.authenticate({ method: req.method ?? '', path, query, headers: req.headers, body: body.raw });
    } catch (error) {
      if (error instanceof AuthenticationFailure) deps.audit.authenticationFailed(authFailureOf(req, exchange.requestId, error));
      throw error;
    }
    if (body.error !== undefined) throw body.error;
    const { op, projectId } = resolve(req, path, query, body);
    await perform(req, res, exchange, op, projectId, body.parsed);
  };

  return (req, res) => {
    const exchange = identify(req, res);
    handle(req, res, exchange).catch((error: unknown) => reply.error(res, exchange, toKmsError(error)));
  };
}
