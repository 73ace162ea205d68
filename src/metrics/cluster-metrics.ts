import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { MetricsText } from '../http/metrics-route';

/**
 * A cluster's metrics are each worker's, aggregated by the primary with prom-client's
 * AggregatorRegistry: it asks every worker over IPC and sums what they answer (or, for what every
 * worker reads from the shared database, takes the first, see each metric's `aggregator`). A
 * scrape of the API's port reaches one worker, which asks the primary for the whole cluster's.
 * The primary loads this module only when metrics are on, and never the HSM or the database.
 */

const REQUEST = 'kms:metrics-request';
const RESPONSE = 'kms:metrics-response';
/** AggregatorRegistry gives up on a worker that has not answered after 5 s; the relay waits a little longer. */
const RELAY_TIMEOUT_MS = 6000;

interface RelayRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}

interface RelayResponse {
  readonly type: typeof RESPONSE;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

/** In a worker: answers the primary's requests for this worker's metrics from `registry`. */
export function shareWithPrimary(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one adds the worker's IPC listener (once per process).
  new AggregatorRegistry();
}

/**
 * In the primary: the whole cluster's metrics, and the answers to workers that were scraped on
 * the API's port and ask for them.
 */
export function clusterMetrics(): MetricsText {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isMessage<RelayRequest>(message, REQUEST)) return;
    const reply = (answer: Omit<RelayResponse, 'type' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ type: RESPONSE, id: message.id, ...answer } satisfies RelayResponse);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) }),
    );
  });
  return { contentType: aggregator.contentType, text: () => aggregator.clusterMetrics() };
}

/** In a worker scraped on the API's port: the whole cluster's metrics, from the primary. */
export function metricsFromPrimary(contentType: string): MetricsText {
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: unknown) => {
    if (!isMessage<RelayResponse>(message, RESPONSE)) return;
    const request = waiting.get(message.id);
    if (!request) return; // timed out already
    waiting.delete(message.id);
    // The type guard checked only `type`: the fields are read as what they are.
    if (typeof message.text === 'string') request.resolve(message.text);
    else request.reject(new Error(typeof message.error === 'string' ? message.error : 'no metrics'));
  });
  return {
    contentType,
    text: () =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('the primary did not answer with the metrics in time'));
        }, RELAY_TIMEOUT_MS);
        waiting.set(id, {
          resolve: (text) => (clearTimeout(timer), resolve(text)),
          reject: (error) => (clearTimeout(timer), reject(error)),
        });
        const request: RelayRequest = { type: REQUEST, id };
        process.send?.(request);
      }),
  };
}
