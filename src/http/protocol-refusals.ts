import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { HttpRefusalError, KmsError } from '../errors';
import { replies } from './reply';
import { newRequestId } from './request-log';

/**
 * What node:http refuses on its own answers with a bare status and no body, or by closing the
 * connection: a request its parser cannot read (a bare CR or a NUL in a header, Transfer-Encoding
 * with Content-Length, a bad Content-Length or chunk size, headers over its limit, a request that
 * does not arrive in time), HTTP/1.1 without Host, an Expect it cannot meet, CONNECT. Here each
 * gets the API's error body and an X-Request-Id, like every other answer of the service.
 */
export interface ProtocolRefusals {
  /**
   * Answers a request HTTP itself refuses (HTTP/1.1 without Host, RFC 9112 §3.2; an Expect other
   * than 100-continue); true when it did, and the request goes no further. The server must be
   * created with `requireHostHeader: false` and send 'checkExpectation' requests here too.
   */
  refuses(req: IncomingMessage, res: ServerResponse): boolean;
  /** Answers, on the connection itself, what node:http's parser refuses, and CONNECT. */
  attach(server: Server): void;
}

/** node:http's test for the one expectation it meets. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/** The answer to a parser error, by its code; the code itself is for the log. */
function refusalOf(error: NodeJS.ErrnoException): KmsError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpRefusalError('headersTooLarge', { detail: 'The request headers are too large.' });
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new HttpRefusalError('chunkExtensionsTooLarge', { detail: 'The chunk extensions are too large.' });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpRefusalError('requestTimeout', { detail: 'The request did not arrive in time.' });
    default:
      return new KmsError('KMS.0214', { detail: 'The HTTP request is malformed.' });
  }
}

export function protocolRefusals(logger: Logger): ProtocolRefusals {
  const reply = replies(logger);
  /** The newest request of each connection: a parser error may concern its body. */
  const newest = new WeakMap<Duplex, { req: IncomingMessage; res: ServerResponse }>();
  /** Connections already answered for a parser error (the parser reports each later chunk again). */
  const refused = new WeakSet<Duplex>();

  const refuses = (req: IncomingMessage, res: ServerResponse): boolean => {
    newest.set(req.socket, { req, res });
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      res.shouldKeepAlive = false;
      reply.error(res, { requestId: newRequestId() }, new KmsError('KMS.0214', { detail: 'An HTTP/1.1 request needs a Host header.' }));
      return true;
    }
    const expectation = req.headers.expect;
    if (expectation !== undefined && !CONTINUE.test(expectation)) {
      reply.error(res, { requestId: newRequestId() }, new HttpRefusalError('expectationFailed', { detail: 'Only Expect: 100-continue is supported.' }));
      return true;
    }
    return false;
  };

  const onClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
    if (refused.has(socket)) return;
    refused.add(socket);
    // The peer is gone, or nothing can be written to it: there is no one to answer.
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const refusal = refusalOf(error);
    const exchange = { requestId: newRequestId() };
    logger.debug({ requestId: exchange.requestId, parserError: error.code }, 'node:http refused a request');
    const current = newest.get(socket);
    if (!current || current.res.writableFinished) {
      reply.socketError(socket, exchange, refusal);
    } else if (!current.req.complete) {
      // The request being received is the broken one (a bad chunk, a timeout): answer it, if its
      // answer has not begun. Node then forgets the request without ending it: destroying it
      // ends the app's read of its body, whose own answer goes nowhere (reply.error sees it answered).
      if (current.res.headersSent) {
        socket.destroy();
        return;
      }
      current.res.shouldKeepAlive = false;
      current.res.once('finish', () => current.req.destroy());
      reply.error(current.res, exchange, refusal);
    } else {
      // What follows a complete request is broken (pipelining): answer after that request's answer.
      current.res.once('finish', () => reply.socketError(socket, exchange, refusal));
    }
  };

  const onConnect = (_req: IncomingMessage, socket: Duplex): void => {
    reply.socketError(socket, { requestId: newRequestId() }, new KmsError('KMS.0215', { detail: 'CONNECT is not supported.' }));
  };

  return {
    refuses,
    attach(server) {
      server.on('clientError', onClientError);
      server.on('connect', onConnect);
    },
  };
}
