/**
 * A start-up failure the operator can act on (a port in use, a module that cannot be loaded, a
 * missing token, a refused PIN): printed as one line, without a stack. Messages never hold a secret.
 */
export class StartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
