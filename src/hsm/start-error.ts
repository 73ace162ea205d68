/** Fails start-up: wrong module, missing token, wrong PIN. The message never holds the PIN. */
export class HsmStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HsmStartError';
  }
}
