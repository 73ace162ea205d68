import { collectDefaultMetrics, Registry } from 'prom-client';
import type { MetricsText } from '../http/metrics-route';
import { AuditMetrics } from './audit-metrics';
import { HsmMetrics } from './hsm-metrics';
import { KeyMetrics } from './key-metrics';
import { RequestMetrics } from './request-metrics';
import { StoreMetrics } from './store-metrics';

/**
 * The metrics of one serving process, the one place that owns prom-client's registry: the parts
 * are the observers the HSM seam, the audit log, the rotator, the store and the HTTP layer report to, and the
 * collectors read at scrape time; with Node's own process metrics (memory, CPU, event-loop lag).
 */
export class ServiceMetrics implements MetricsText {
  readonly registry = new Registry();
  readonly hsm = new HsmMetrics(this.registry);
  readonly audit = new AuditMetrics(this.registry);
  readonly keys = new KeyMetrics(this.registry);
  readonly requests = new RequestMetrics(this.registry);
  readonly store = new StoreMetrics(this.registry);

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
