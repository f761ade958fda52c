import { createServer, type Server } from 'node:http';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics (prom-client). Always counted (a counter is an addition); served only
 * when [metrics] enabled, on an address of their own, never beside the API.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'gaze_http_requests_total',
    help: 'API requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'gaze_http_request_duration_seconds',
    help: 'Time from request to the end of the answer, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly storeBytes = new Counter({
    name: 'gaze_store_bytes_total',
    help: 'Image bytes written into (in) and read out of (out) each store; "cache" is the node image cache',
    labelNames: ['store', 'direction'] as const,
    registers: [this.registry],
  });
  readonly importTasks = new Counter({
    name: 'gaze_import_tasks_total',
    help: 'Import tasks that ended on this node, by method and outcome (success, failure, handed_on)',
    labelNames: ['method', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly importSeconds = new Histogram({
    name: 'gaze_import_duration_seconds',
    help: 'Time an import task ran on this node, by method and outcome',
    labelNames: ['method', 'outcome'] as const,
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gaze_' });
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** Several gauges of one name read together when scraped, by one label. */
  labelledGauge(name: string, help: string, label: string, read: () => Record<string, number>): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        for (const [value, n] of Object.entries(read())) this.set({ [label]: value }, n);
      },
    });
  }

  /** This process as one worker of several: the supervisor asks it for its metrics to add them up. */
  shareWithSupervisor(): void {
    AggregatorRegistry.setRegistries([this.registry]);
  }
}

/**
 * A worker answers the supervisor's requests for metrics from now on (prom-client does so only once an
 * aggregator exists in the worker too): called first thing, so that a worker still starting answers
 * (with nothing yet) instead of making the supervisor's scrape wait for it and time out.
 */
export function answerSupervisor(): void {
  new AggregatorRegistry();
}

/** The workers' metrics added up, read by the supervisor of `workers = N`. */
export function workersMetrics(): MetricsSource {
  const aggregator = new AggregatorRegistry();
  return { contentType: aggregator.contentType, text: () => aggregator.clusterMetrics() };
}

export interface MetricsSource {
  contentType: string;
  text(): Promise<string>;
}

export function ownMetrics(metrics: Metrics): MetricsSource {
  return { contentType: metrics.registry.contentType, text: () => metrics.registry.metrics() };
}

/** Serves GET /metrics in Prometheus's text format on its own address ([metrics] bind_host, bind_port). */
export async function serveMetrics(source: MetricsSource, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    source.text().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
