import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import type { Config } from './config/index.ts';
import { shownValue } from './config/shown.ts';
import { createApp } from './app.ts';
import { configuredParts, databaseOptions, databaseUrl, pasteFlavor, whenDatabaseReachable } from './configured-parts.ts';
import { openDatabase, syncSchema } from './db/connection.ts';
import { startHashWorkers } from './ingest/hashing.ts';
import { createLogger, logOptions, reopenLogFile, type Logger } from './util/logger.ts';
import { databaseUrlShown } from './db/connection-url.ts';
import { timerMs } from './domain/time.ts';
import { answerSupervisor, ownMetrics, serveMetrics, workersMetrics, type MetricsSource } from './util/metrics.ts';

// `gaze serve`: one process, or a supervisor of `workers` processes; and the signals an operator sends.

/** A worker's words to its supervisor: it listens; it handles the operator's signals (prom-client's own messages are of another shape). */
const LISTENING = { gaze: 'listening' } as const;
const SIGNALS_HANDLED = { gaze: 'signals-handled' } as const;

export async function serve(config: Config): Promise<void> {
  const log = createLogger(logOptions(config));
  for (const warning of config.warnings) log.warn(warning);
  // [DEFAULT] debug: every option's value and where it came from, as Glance logs its configuration.
  if (log.isLevelEnabled('debug') && cluster.isPrimary) {
    for (const entry of config.entries()) log.debug(`[${entry.section}] ${entry.option} = ${shownValue(entry)} (${entry.from})`);
  }
  const host = config.get('DEFAULT', 'bind_host');
  const port = config.get('DEFAULT', 'bind_port');
  const noAuth = !pasteFlavor(config).keystone;
  const workers = config.get('DEFAULT', 'workers');
  const supervising = workers > 1 && cluster.isPrimary;
  // Workers that handle the operator's signals (one still loading its modules would die of them).
  const handling = new Set<Worker>();
  // At once: a signal that came while the process is still starting must not stop it either.
  handleOperatorSignals(log, supervising ? () => handling : undefined);
  if (cluster.isWorker) process.send?.(SIGNALS_HANDLED);
  if (supervising) return supervise(config, log, workers, host, port, noAuth, handling);
  if (cluster.isWorker) answerSupervisor();
  const app = await createApp(config, { log });
  startHashWorkers(log);
  await app.server.listen({ host, port, backlog: config.get('DEFAULT', 'backlog') });
  const metricsServer = cluster.isPrimary ? await startMetrics(config, ownMetrics(app.metrics), log) : null;
  if (cluster.isWorker) {
    app.metrics.shareWithSupervisor();
    process.send?.(LISTENING);
    log.info('worker serving');
  }
  if (cluster.isPrimary) log.info(`serving the Image API on ${displayUrl(host, port)} (${noAuth ? 'no auth' : 'keystone'})`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal (Ctrl-C twice) does not wait for the running requests: what it cuts off is
      // recovered as after a crash (its image goes back to queued at the next start).
      log.warn(`${signal} again while stopping: exiting now`);
      log.flush(() => process.exit(1));
      return;
    }
    stopping = true;
    // Draining: the load balancer sees 503 on /healthcheck and moves clients away; then the service
    // stops accepting, hands running imports back (their leases) and exits.
    app.drain();
    const drainMs = timerMs(config.get('DEFAULT', 'drain_seconds'));
    log.info(drainMs > 0 ? `${signal}: draining for ${drainMs / 1000} s before stopping` : `${signal}: stopping`);
    setTimeout(() => void close(), drainMs);
  };
  const close = () => {
    const graceMs = timerMs(config.get('DEFAULT', 'graceful_shutdown_timeout'));
    if (graceMs > 0) {
      setTimeout(() => {
        // What was cut off is recovered as after a crash: its image goes back to queued at the next start.
        log.warn(`requests still running ${graceMs / 1000} s after the stop began (graceful_shutdown_timeout); exiting`);
        log.flush(() => process.exit(1));
      }, graceMs).unref();
    }
    metricsServer?.close();
    return app.close().then(
      () => log.flush(() => process.exit(0)),
      (err: unknown) => {
        log.error({ err }, 'stopping failed');
        log.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * What Node would do on its own with an operator's other signals is stop the process (SIGHUP,
 * SIGUSR2) or open its inspector to anyone on the host (SIGUSR1). Instead: SIGHUP reopens the log file
 * (logrotate's move-then-signal; the configuration is read at start only), SIGUSR2 logs a report (as
 * Glance's Guru Meditation report does), SIGUSR1 is refused. A supervisor passes each on to its workers.
 */
function handleOperatorSignals(log: Logger, workers?: () => Iterable<Worker>): void {
  const passOn = (signal: NodeJS.Signals) => {
    for (const worker of workers?.() ?? []) worker.process.kill(signal);
  };
  process.on('SIGHUP', () => {
    try {
      const what = reopenLogFile(log) ? 'the log file was reopened' : 'no log file to reopen (the log goes to stdout or stderr)';
      log.info(`SIGHUP: ${what}; the configuration is read at start only (restart to apply changes)`);
    } catch (err) {
      log.warn({ err }, 'SIGHUP: the log file could not be reopened; lines still go to the one open');
    }
    passOn('SIGHUP');
  });
  process.on('SIGUSR2', () => {
    const memory = process.memoryUsage();
    log.info(
      {
        report: {
          pid: process.pid,
          uptimeSeconds: Math.round(process.uptime()),
          node: process.version,
          memory,
          resources: process.resourceUsage(),
          activeResources: process.getActiveResourcesInfo().length,
        },
      },
      `SIGUSR2: status report (rss ${Math.round(memory.rss / 2 ** 20)} MiB)`,
    );
    passOn('SIGUSR2');
  });
  process.on('SIGUSR1', () => log.warn('SIGUSR1 ignored: the Node inspector stays closed'));
}

function displayUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}

/**
 * `workers = N` (N > 1): N processes share the listening socket; the database is the only shared state
 * (a delete on one worker still ends an upload running on another: its final compare-and-set fails).
 * The schema is synced once here so that workers do not race on it.
 */
async function supervise(config: Config, log: Logger, workers: number, host: string, port: number, noAuth: boolean, handling: Set<Worker>): Promise<void> {
  // What every worker would refuse stops the service here, once, with its one line (exit code 2).
  await (await configuredParts(config, log)).auth.close?.();
  await dbSync(config, log);
  // Each worker accepts its own connections from the shared socket, as Glance's children do: with
  // Node's default the supervisor accepts and hands them over, and one handed to a worker that has
  // just died (kill -9, the OOM killer) is never answered.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let stopping = false;
  let announced = false;
  let metricsServer: Server | null = null;
  const restarts = new Set<NodeJS.Timeout>();
  // Replacements that failed to start in a row: each waits longer (1 s, 2 s, … 30 s).
  let failedStarts = 0;
  const stop = () => {
    stopping = true;
    for (const timer of restarts) clearTimeout(timer);
    metricsServer?.close();
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  };
  const start = () => {
    if (stopping) return;
    let listening = false;
    const worker = cluster.fork();
    worker.on('message', (message: unknown) => {
      const word = (message as { gaze?: unknown } | null)?.gaze;
      if (word === SIGNALS_HANDLED.gaze) handling.add(worker);
      if (word !== LISTENING.gaze) return;
      listening = true;
      failedStarts = 0;
      if (announced || stopping) return;
      announced = true;
      log.info(`serving the Image API on ${displayUrl(host, port)} with ${workers} workers (${noAuth ? 'no auth' : 'keystone'})`);
    });
    worker.on('exit', (code, signal) => {
      handling.delete(worker);
      // The supervisor ends with its workers' worst code (1: cut off by graceful_shutdown_timeout).
      if (code) process.exitCode = Math.max(Number(process.exitCode ?? 0), code);
      if (stopping) return;
      // A worker that stopped on the configuration (exit 2), or, before the service ever served, one
      // that could not serve at all (the port taken, the database unreachable), would stop again: so
      // does the service, as one process would, instead of starting workers for ever. Once serving, a
      // replacement that fails is tried again, later each time, beside the workers that serve.
      if (code === 2 || (!listening && !announced)) {
        log.error(`a worker stopped ${code === 2 ? 'on the configuration' : 'before it could serve'} (above); stopping`);
        process.exitCode = Math.max(Number(process.exitCode ?? 0), code || 1);
        return stop();
      }
      if (!listening) failedStarts++;
      const delayMs = Math.min(30_000, 1000 * 2 ** Math.max(0, failedStarts - 1));
      log.error(`worker exited (${signal ?? code}); starting another${delayMs > 1000 ? ` in ${delayMs / 1000} s` : ''}`);
      const timer = setTimeout(() => {
        restarts.delete(timer);
        start();
      }, delayMs);
      restarts.add(timer);
    });
  };
  for (let i = 0; i < workers; i++) start();
  // The supervisor answers /metrics with every worker's figures added up.
  metricsServer = await startMetrics(config, workersMetrics(), log);
  if (stopping) metricsServer?.close(); // a worker stopped meanwhile
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** [metrics] enabled: GET /metrics on its own address; null when off. */
async function startMetrics(config: Config, source: MetricsSource, log: Logger): Promise<Server | null> {
  if (!config.get('metrics', 'enabled')) return null;
  const host = config.get('metrics', 'bind_host');
  const port = config.get('metrics', 'bind_port');
  const server = await serveMetrics(source, host, port);
  log.info(`serving metrics on ${displayUrl(host, port)}metrics`);
  return server;
}

/** Creates or upgrades the schema; `report` is told what was applied (`gaze db sync` prints it). */
export async function dbSync(config: Config, log: Logger, report?: (line: string) => void): Promise<void> {
  const url = databaseUrl(config);
  const db = openDatabase(url, { mysqlSqlMode: databaseOptions(config).mysqlSqlMode });
  try {
    // As glance-manage through oslo.db: a database still starting is waited for.
    const applied = await whenDatabaseReachable(config, log, () => syncSchema(db)).catch((err: unknown) => {
      throw new Error(`cannot bring the database ${databaseUrlShown(url)} to Gaze's schema: ${(err as Error).message}`, { cause: err });
    });
    if (applied.length) log.info(`database schema upgraded: applied ${applied.join(', ')}`);
    report?.(applied.length ? `gaze: applied ${applied.join(', ')}` : 'gaze: database schema is up to date');
  } finally {
    await db.close();
  }
}
