/**
 * `@tenure/prometheus`: Prometheus metrics for tenure, on prom-client. Instrument an
 * arbitrator (its session and every election on it) and `@tenure/cron` schedulers, then serve
 * the registry:
 *
 * ```js
 * const metrics = createTenureMetrics();
 * metrics.instrumentArbitrator(arbitrator);
 * metrics.instrumentScheduler(scheduler);
 * // GET /metrics → await metrics.registry.metrics(), content type metrics.registry.contentType
 * ```
 *
 * @packageDocumentation
 */

export type {
  InstrumentArbitratorOptions,
  TenureMetrics,
  TenureMetricsOptions,
} from './tenure-metrics.js';
export { createTenureMetrics } from './tenure-metrics.js';
