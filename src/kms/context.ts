/** Who is asking, for which project: what every service call receives from the HTTP layer. */
export interface Principal {
  /** How the caller proved who it is. Until authentication lands every caller is anonymous. */
  readonly kind: 'anonymous' | 'access-key' | 'token';
  /** The access key or token id; never a secret. */
  readonly id: string;
}

export interface RequestContext {
  readonly projectId: string;
  readonly requestId: string;
  readonly principal: Principal;
}

/** Milliseconds since the epoch; injected so that tests can move time (pending deletion windows). */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
