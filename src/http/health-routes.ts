import type { RequestHandler, Router } from 'express';
import type { Readiness } from '../health/readiness';
import type { components } from './openapi.generated';
import type { PublicRoute } from './operation';

type HealthResponse = components['schemas']['HealthResponse'];
type ReadinessResponse = components['schemas']['ReadinessResponse'];

/** The health probes: served without a credential, never audited (openapi.yaml, `security: []`). */
export const HEALTH_ROUTES: readonly PublicRoute[] = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
];

/**
 * GET /healthz: the process serves HTTP (nothing else is asked, so a restart is never triggered by
 * an HSM outage). GET /readyz: 200 when every readiness check passes, else 503 (and while draining).
 * Mounted before authentication, the body parser and the access log, so a probe every few seconds
 * costs neither a credential nor a log line.
 */
export function mountHealthRoutes(app: Router, readiness: Readiness): void {
  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
  app.get('/healthz', noStore, (_req, res) => {
    const body: HealthResponse = { status: 'ok' };
    res.status(200).json(body);
  });
  app.get('/readyz', noStore, async (_req, res) => {
    const report = await readiness.check();
    const body: ReadinessResponse = { status: report.draining ? 'draining' : report.ready ? 'ready' : 'not-ready', checks: report.checks };
    res.status(report.ready ? 200 : 503).json(body);
  });
}
