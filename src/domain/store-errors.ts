/**
 * The store did not answer: its database is down, unreachable, restarting or out of connections.
 * The request may succeed later (the HTTP layer answers 503 KMS.0104); what it wrote, if anything,
 * is either committed whole or not at all. The cause is for the log only.
 */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('the metadata store is unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}
