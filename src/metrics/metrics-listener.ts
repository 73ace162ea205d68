import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerScrape, METRICS_ROUTE, type MetricsAnswer } from '../http/metrics-route';
import { StartError } from '../start-error';

/** A listener of the metrics' own, and where it listens. */
export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics on a listener of its own (KMS_METRICS_PORT): nothing else is there (404),
 * and nothing of it is logged or audited. Fails with a one-line StartError when it cannot listen.
 */
export async function listenForMetrics(where: { readonly host: string; readonly port: number }, answer: MetricsAnswer): Promise<MetricsListener> {
  const scrape = answerScrape(answer);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== METRICS_ROUTE.path) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' }).end('method not allowed\n');
    } else {
      scrape(req, res);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new StartError(`cannot listen for metrics on ${where.host}:${where.port}: ${error.code ?? error.message}`, { cause: error })),
    );
    server.listen(where.port, where.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = where.host.includes(':') ? `[${where.host}]` : where.host;
  return {
    url: `http://${host}:${port}${METRICS_ROUTE.path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
