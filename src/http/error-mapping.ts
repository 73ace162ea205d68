import { StoreUnavailableError } from '../domain/store-errors';
import { KmsError } from '../errors';
import type { ContractErrors } from './contract';

/**
 * Turns any error that reaches the app's error handler into a KmsError: our own (the body's and
 * the services') pass through; the validator's refusals become the contract's codes; a path
 * parameter Express's router cannot decode is a bad URL; a metadata store that did not answer (the
 * database down or restarting) is 503 KMS.0104, worth a retry; anything unknown is KMS.0103 with
 * the cause kept for the log.
 */
export function toKmsError(error: unknown, contract: ContractErrors, route: string | undefined): KmsError {
  if (error instanceof KmsError) return error;
  const refusal = contract.kmsErrorOf(error, route);
  if (refusal) return refusal;
  // The router's decodeURIComponent of a path parameter ("%zz"): a URIError with status 400.
  if (error instanceof StoreUnavailableError) return new KmsError('KMS.0104', { detail: 'The key metadata store is unavailable; retry later.', cause: error });
  if (error instanceof URIError) return new KmsError('KMS.0201', { cause: error });
  return new KmsError('KMS.0103', { cause: error });
}
