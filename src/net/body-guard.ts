import { Readable } from 'node:stream';
import { DownloadError, abortedError } from './download-error.ts';

export interface BodyGuardOptions {
  maxBytes?: number;
  /** Content-Length: the body must end after exactly this many bytes. */
  expectedLength: number | null;
  /** Longest wait for the next bytes while the reader wants them (0: none). */
  readTimeoutMs: number;
  /** Over each readTimeoutMs spent waiting for the source, at least this many bytes per second (0 or absent: no minimum). */
  minBytesPerSecond?: number;
  signal?: AbortSignal;
  url?: string;
  /** Called once when the guarded stream closes, however it ends. */
  onClose?: () => void;
}

/**
 * Wraps a response body: fails with TOO_LARGE as soon as more than maxBytes arrived, READ_TIMEOUT
 * when no byte arrives for readTimeoutMs while the reader is waiting, TOO_SLOW when fewer than
 * minBytesPerSecond arrive on average over readTimeoutMs of waiting (a trickle would otherwise hold
 * an import for ever; time spent paused by a slow reader counts for neither), CLOSED_EARLY when the
 * body ends before Content-Length, ABORTED on the signal. Destroying the guard destroys the source.
 */
export function guardBody(source: Readable, opts: BodyGuardOptions): Readable {
  return new GuardedBody(source, opts);
}

class GuardedBody extends Readable {
  readonly #source: Readable;
  readonly #opts: BodyGuardOptions;
  #received = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The rate's window: time spent waiting for the source (since when, now), and what arrived meanwhile. */
  #waitingSince: number | null = null;
  #waitedMs = 0;
  #windowBytes = 0;
  #sourceDone = false;
  readonly #onAbort = (): void => {
    this.destroy(abortedError(this.#opts.url));
  };

  constructor(source: Readable, opts: BodyGuardOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.#source = source;
    this.#opts = opts;
    // A failure reaches whoever reads the body (a pipeline started later still sees it): a body not
    // read yet, while a quota check runs between the response and the read, must not turn it into an
    // unhandled 'error' event, which ends the process.
    this.on('error', () => {});
    source.pause();
    source.on('data', (chunk: Buffer | string) => this.#onData(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    source.on('end', () => this.#onEnd());
    source.on('error', (err: Error) => this.#onError(err));
    source.on('close', () => {
      if (!this.#sourceDone && !this.destroyed) this.destroy(this.#shortError());
    });
    if (opts.signal) {
      if (opts.signal.aborted) process.nextTick(this.#onAbort);
      else opts.signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  #extra(cause?: unknown): { url?: string; cause?: unknown } {
    return { ...(this.#opts.url === undefined ? {} : { url: this.#opts.url }), ...(cause === undefined ? {} : { cause }) };
  }

  #shortError(cause?: unknown): DownloadError {
    const expected = this.#opts.expectedLength;
    return expected !== null
      ? new DownloadError('CLOSED_EARLY', `downloaded data size ${this.#received} is different from expected ${expected}`, this.#extra(cause))
      : new DownloadError('CLOSED_EARLY', `connection closed after ${this.#received} bytes before the body was complete`, this.#extra(cause));
  }

  #arm(): void {
    const ms = this.#opts.readTimeoutMs;
    if (ms <= 0 || this.#sourceDone) return;
    this.#waitingSince ??= Date.now();
    if (this.#timer) this.#timer.refresh();
    else {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.destroy(new DownloadError('READ_TIMEOUT', `no data received for ${ms} ms after ${this.#received} bytes`, this.#extra()));
      }, ms);
    }
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#waitingSince !== null) this.#waitedMs += Date.now() - this.#waitingSince;
    this.#waitingSince = null;
  }

  /** Counts bytes into the rate's window; at its end, fails the body when they were too few. */
  #tooSlow(bytes: number): boolean {
    const rate = this.#opts.minBytesPerSecond ?? 0;
    const window = this.#opts.readTimeoutMs;
    if (rate <= 0 || window <= 0) return false;
    this.#windowBytes += bytes;
    if (this.#waitedMs < window) return false;
    const seconds = this.#waitedMs / 1000;
    if (this.#windowBytes < rate * seconds) {
      const message = `fewer than ${rate} bytes per second arrived over ${+seconds.toFixed(1)} seconds (${this.#windowBytes} bytes, ${this.#received} in all)`;
      this.destroy(new DownloadError('TOO_SLOW', message, this.#extra()));
      return true;
    }
    this.#waitedMs = 0;
    this.#windowBytes = 0;
    return false;
  }

  override _read(): void {
    if (this.#sourceDone) return;
    this.#arm();
    this.#source.resume();
  }

  #onData(chunk: Buffer): void {
    if (this.destroyed) return;
    this.#disarm();
    this.#received += chunk.length;
    const max = this.#opts.maxBytes;
    if (max !== undefined && this.#received > max) {
      this.destroy(new DownloadError('TOO_LARGE', `download exceeds the limit of ${max} bytes`, this.#extra()));
      return;
    }
    if (this.#tooSlow(chunk.length)) return;
    if (this.push(chunk)) this.#arm();
    else this.#source.pause();
  }

  #onEnd(): void {
    this.#sourceDone = true;
    this.#disarm();
    if (this.destroyed) return;
    const expected = this.#opts.expectedLength;
    if (expected !== null && this.#received !== expected) this.destroy(this.#shortError());
    else this.push(null);
  }

  #onError(err: Error): void {
    this.#sourceDone = true;
    this.#disarm();
    if (this.destroyed) return;
    if (this.#opts.signal?.aborted) {
      this.destroy(abortedError(this.#opts.url));
      return;
    }
    this.destroy(err instanceof DownloadError ? err : this.#shortError(err));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#disarm();
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    if (!this.#sourceDone) {
      this.#sourceDone = true;
      this.#source.on('error', () => {
        /* reported by the guard */
      });
      this.#source.destroy();
    }
    try {
      this.#opts.onClose?.();
    } finally {
      callback(err);
    }
  }
}
