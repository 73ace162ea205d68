import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { KMS_ERRORS, type KmsError } from '../errors';
import type { Exchange } from './request-log';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Checks an error body before it is sent (the tests check every one against openapi.yaml):
 * undefined when it conforms, else what is wrong.
 */
export type ErrorBodyCheck = (body: unknown) => string | undefined;

export interface Replies {
  /**
   * Sends an operation's JSON body with Express's res.json, which the contract's response
   * validation hooks (its failure is the request's failure, answered KMS.0103). The request id
   * header is already set.
   */
  json(res: Response, status: number, body: unknown): void;
  /** 204 without a body (the SDK's tag writes). The request id header is already set. */
  noContent(res: Response): void;
  /**
   * The one place that turns errors into responses: the KMS body with the catalogue's status.
   * Client errors are answered with their code; server errors are logged with their cause and
   * answered with a generic message. No request value ever reaches a message.
   */
  error(res: ServerResponse, exchange: Exchange, error: KmsError): void;
  /**
   * The same answer written straight to a connection that has no ServerResponse (a request
   * node:http's parser refused, or CONNECT): the whole response as bytes, then the connection
   * is closed, for nothing more can be read from it.
   */
  socketError(socket: Duplex, exchange: Exchange, error: KmsError): void;
}

/** KMS.0103, for a response the service must not send. */
function internalError(exchange: Exchange): unknown {
  const body = { error_code: 'KMS.0103', error_msg: KMS_ERRORS['KMS.0103'].message };
  return { error: body, ...body, request_id: exchange.requestId };
}

export function replies(logger: Logger, check?: ErrorBodyCheck): Replies {
  const send = (res: ServerResponse, exchange: Exchange, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, ['Content-Type', JSON_CONTENT_TYPE, 'Content-Length', String(Buffer.byteLength(text)), 'X-Request-Id', exchange.requestId]);
    res.end(text);
  };

  /** Logs the failure and gives the status and body to answer it with. */
  const errorAnswer = (exchange: Exchange, kmsError: KmsError): [number, unknown] => {
    exchange.errorCode = kmsError.code;
    if (kmsError.status >= 500) {
      logger.error({ requestId: exchange.requestId, code: kmsError.code, err: kmsError.cause ?? kmsError }, 'request failed');
    } else {
      logger.info({ requestId: exchange.requestId, code: kmsError.code, detail: kmsError.detail }, 'request refused');
    }
    const body = { error_code: kmsError.code, error_msg: kmsError.publicMessage };
    const errorBody = { error: body, ...body, request_id: exchange.requestId };
    const problem = check?.(errorBody);
    if (problem) {
      logger.error({ requestId: exchange.requestId, status: kmsError.status, problem }, 'error body does not match openapi.yaml');
      return [500, internalError(exchange)];
    }
    return [kmsError.status, errorBody];
  };

  const error = (res: ServerResponse, exchange: Exchange, kmsError: KmsError): void => {
    if (res.writableEnded) {
      // Already answered: the connection failed under the request, and that was its answer.
      logger.debug({ requestId: exchange.requestId, code: kmsError.code }, 'request failed after it was answered');
      return;
    }
    if (res.headersSent) {
      logger.error({ requestId: exchange.requestId, code: kmsError.code, err: kmsError.cause ?? kmsError }, 'request failed after its response began');
      res.destroy();
      return;
    }
    const [status, body] = errorAnswer(exchange, kmsError);
    send(res, exchange, status, body);
  };

  const socketError = (socket: Duplex, exchange: Exchange, kmsError: KmsError): void => {
    const [status, body] = errorAnswer(exchange, kmsError);
    const text = JSON.stringify(body);
    const head = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
      `Date: ${new Date().toUTCString()}`,
      `Content-Type: ${JSON_CONTENT_TYPE}`,
      `Content-Length: ${Buffer.byteLength(text)}`,
      `X-Request-Id: ${exchange.requestId}`,
      'Connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${text}`, () => socket.destroy());
  };

  const json = (res: Response, status: number, body: unknown): void => {
    res.status(status).json(body);
  };

  const noContent = (res: Response): void => {
    res.status(204).end();
  };

  return { json, noContent, error, socketError };
}
