import { StoreUnavailableError } from '../../domain/store-errors';

/**
 * What a PostgreSQL failure means to the store. Errors are read by shape (code, constraint), never
 * by instanceof: pg's DatabaseError class is the one of its first loader (see sqlite-errors.ts).
 */

/** SQLSTATE classes and codes, and Node's socket errors, that say the database did not answer. */
const UNAVAILABLE_CLASSES = ['08']; // connection exception
const UNAVAILABLE_CODES = new Set([
  '57P01', // admin_shutdown: the server is stopping
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or in recovery
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** pg's own errors carry no code: a lost connection, a pool whose connect timed out, a closed pool. */
const UNAVAILABLE_MESSAGES = [/^Connection terminated/, /^timeout exceeded when trying to connect/, /^Client has encountered a connection error/, /after calling end on the pool/, /^Client was closed/];

function field(error: unknown, name: 'code' | 'constraint' | 'message'): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const value = (error as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

export function isUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  const code = field(error, 'code');
  if (code !== undefined && (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_CLASSES.includes(code.slice(0, 2)))) return true;
  const message = field(error, 'message') ?? '';
  return UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message));
}

/** Runs one call to the database; a failure that says it did not answer becomes StoreUnavailableError. */
export async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw isUnavailable(error) && !(error instanceof StoreUnavailableError) ? new StoreUnavailableError(error) : error;
  }
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  return field(error, 'code') === '23505' && (constraint === undefined || field(error, 'constraint') === constraint);
}

export function isForeignKeyViolation(error: unknown, constraint?: string): boolean {
  return field(error, 'code') === '23503' && (constraint === undefined || field(error, 'constraint') === constraint);
}
