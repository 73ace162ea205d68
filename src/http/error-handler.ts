import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import type { FieldErrorCodes } from '../openapi-spec';
import { toKmsError } from './error-mapping';
import { operationNameOf } from './operation';
import { locals } from './request-log';

/**
 * The one place that turns errors into responses: the KMS body with the catalogue's status. Client
 * errors are answered with their code; server errors are logged with their cause and answered
 * with a generic message. No request value ever reaches a message.
 */
export function errorHandler(logger: Logger, fieldCodes: FieldErrorCodes) {
  return (error: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const kmsError = toKmsError(error, operationNameOf(req.path), fieldCodes);
    const { requestId } = locals(res);
    locals(res).errorCode = kmsError.code;
    if (kmsError.status >= 500) {
      logger.error({ requestId, code: kmsError.code, err: causeOf(kmsError) }, 'request failed');
    } else {
      logger.info({ requestId, code: kmsError.code, detail: kmsError.detail }, 'request refused');
    }
    const body = { error_code: kmsError.code, error_msg: kmsError.publicMessage };
    res.status(kmsError.status).json({ error: body, ...body, request_id: requestId });
  };
}

function causeOf(error: KmsError): unknown {
  return error.cause ?? error;
}
