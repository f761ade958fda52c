// The one logger: fastify's pino, configured from Glance's oslo.log options. Requests log through
// `request.log`, which carries the request id (`reqId`) on every line; background work (imports, the
// scrubber) logs through a child with the task or image it concerns.

import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { ConfigError, type Config } from '../config/index.ts';

export type { Logger };

export interface LogOptions {
  /** [DEFAULT] debug: debug level instead of info. */
  debug: boolean;
  /** [DEFAULT] log_file (relative to log_dir when that is set), else stdout, or stderr with use_stderr. */
  logFile: string | null;
  logDir: string | null;
  useStderr: boolean;
}

export function logOptions(config: Config): LogOptions {
  return {
    debug: config.get('DEFAULT', 'debug'),
    logFile: config.get('DEFAULT', 'log_file'),
    logDir: config.get('DEFAULT', 'log_dir'),
    useStderr: config.get('DEFAULT', 'use_stderr'),
  };
}

/** Where log lines go, as oslo.log decides it: a file when one is named, else stderr or stdout. */
export function logDestination(opts: LogOptions): string | number {
  if (opts.logFile) return opts.logDir ? path.resolve(opts.logDir, opts.logFile) : opts.logFile;
  // oslo.log names the file after the program: Glance's API writes <log_dir>/glance-api.log.
  if (opts.logDir) return path.join(opts.logDir, 'glance-api.log');
  return opts.useStderr ? 2 : 1;
}

/** How each logger that writes a file opens it again (SIGHUP, after logrotate moved it away). */
const reopeners = new WeakMap<Logger, () => void>();

export function createLogger(opts: LogOptions): Logger {
  const dest = logDestination(opts);
  const options = { level: opts.debug ? 'debug' : 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (typeof dest !== 'string') {
    return pino(options, outlivesWriteErrors(pino.destination({ dest, sync: false, maxLength: MAX_WAITING }), dest === 2 ? 'stderr' : 'stdout'));
  }
  // The file is opened here, before pino: a destination still opening when the process exits (a
  // configuration error found a moment later) makes pino's exit flush throw.
  const fd = openForAppend(dest, opts.logFile ? 'log_file' : 'log_dir');
  const file = outlivesWriteErrors(pino.destination({ dest: fd, sync: !!opts.useStderr, maxLength: MAX_WAITING }), `the log file ${dest}`);
  // oslo.log writes to stderr too when use_stderr is set beside a log file. (Written at once: pino
  // cannot flush the two at exit.)
  const both = () =>
    [file, outlivesWriteErrors(pino.destination({ dest: 2, sync: true, maxLength: MAX_WAITING }), 'stderr')].map((stream) => ({
      level: options.level as 'debug' | 'info',
      stream,
    }));
  const log = opts.useStderr ? pino(options, pino.multistream(both())) : pino(options, file);
  // sonic-boom reopens a destination it was given as a path: this one was given as the descriptor
  // opened above, so it is told the path now.
  Object.assign(file, { file: dest });
  reopeners.set(log, () => {
    // Tried first: a reopen sonic-boom fails leaves a listener behind that closes the old descriptor
    // again at the next one (another file's, by then). This throws to the caller instead.
    closeSync(openSync(dest, 'a'));
    file.reopen(dest);
  });
  return log;
}

/** Log lines waiting for a destination that cannot take them (a full disk): beyond this, new ones are dropped. */
const MAX_WAITING = 16 << 20;

type Destination = ReturnType<typeof pino.destination>;

/**
 * A destination that fails to write (a full disk, a reopen logrotate left unwritable) must not end the
 * service, nor stop it from stopping: said on stderr once a minute, its lines wait (up to MAX_WAITING)
 * and go out once it writes again. sonic-boom's flushSync, pino's at exit, tries a failed write again
 * for ever whatever the error: while writes fail it flushes nothing (the lines waiting are lost).
 */
function outlivesWriteErrors(stream: Destination, what: string): Destination {
  let failing = false;
  let saidAt = 0;
  stream.on('write', () => {
    failing = false;
  });
  stream.on('error', (err: Error) => {
    failing = true;
    if (Date.now() - saidAt < 60_000) return;
    saidAt = Date.now();
    try {
      writeSync(2, `gaze: ${what}: ${err.message}\n`);
    } catch {
      // stderr cannot be written either
    }
  });
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = () => {
    if (!failing) flushSync();
  };
  return stream;
}

/** Opens the log file again under its name (lines written meanwhile go to the old file); false when the log is no file. */
export function reopenLogFile(log: Logger): boolean {
  const reopen = reopeners.get(log);
  reopen?.();
  return reopen !== undefined;
}

/** A log file that cannot be written stops start-up with the reason (pino would lose every line). */
function openForAppend(file: string, option: 'log_file' | 'log_dir'): number {
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    return openSync(file, 'a');
  } catch (err) {
    throw new ConfigError(`cannot write the log file ${file}: ${(err as Error).message}`, { section: 'DEFAULT', option });
  }
}

/** A logger that writes nothing (in-process tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The operator's one line for a failed import task, by whichever path ends it (Glance logs every failed task). */
export function logTaskFailure(log: Logger, taskId: string, imageId: string | null, message: string): void {
  log.warn({ task: taskId, image: imageId }, `import task failed: ${message}`);
}
