import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KmsError } from '../errors';
import type { Exchange } from './request-log';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Checks an operation's response before it is sent (the tests check every response against
 * openapi.yaml): undefined when it conforms, else what is wrong.
 */
export type ResponseCheck = (operation: string, status: number, body: unknown) => string | undefined;

export interface Replies {
  /** Sends an operation's JSON body with the request id. */
  json(res: ServerResponse, exchange: Exchange, operation: string, status: number, body: unknown): void;
  /**
   * The one place that turns errors into responses: the KMS body with the catalogue's status.
   * Client errors are answered with their code; server errors are logged with their cause and
   * answered with a generic message. No request value ever reaches a message.
   */
  error(res: ServerResponse, exchange: Exchange, error: KmsError): void;
}

export function replies(logger: Logger, check?: ResponseCheck): Replies {
  const send = (res: ServerResponse, exchange: Exchange, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, ['Content-Type', JSON_CONTENT_TYPE, 'Content-Length', String(Buffer.byteLength(text)), 'X-Request-Id', exchange.requestId]);
    res.end(text);
  };

  const error = (res: ServerResponse, exchange: Exchange, kmsError: KmsError): void => {
    if (res.headersSent) {
      logger.error({ requestId: exchange.requestId, code: kmsError.code, err: kmsError.cause ?? kmsError }, 'request failed after its response began');
      res.destroy();
      return;
    }
    exchange.errorCode = kmsError.code;
    if (kmsError.status >= 500) {
      logger.error({ requestId: exchange.requestId, code: kmsError.code, err: kmsError.cause ?? kmsError }, 'request failed');
    } else {
      logger.info({ requestId: exchange.requestId, code: kmsError.code, detail: kmsError.detail }, 'request refused');
    }
    const body = { error_code: kmsError.code, error_msg: kmsError.publicMessage };
    send(res, exchange, kmsError.status, { error: body, ...body, request_id: exchange.requestId });
  };

  const json = (res: ServerResponse, exchange: Exchange, operation: string, status: number, body: unknown): void => {
    const problem = check?.(operation, status, body);
    if (problem) {
      logger.error({ requestId: exchange.requestId, operation, status, problem }, 'response does not match openapi.yaml');
      const body500 = { error_code: 'KMS.0103', error_msg: 'A system exception occurred. Contact technical support.' };
      send(res, exchange, 500, { error: body500, ...body500, request_id: exchange.requestId });
      return;
    }
    send(res, exchange, status, body);
  };

  return { json, error };
}
