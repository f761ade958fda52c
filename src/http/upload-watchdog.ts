import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { INGEST_BUFFER_BYTES } from '../ingest/buffers.ts';
import { gazeError } from '../domain/errors.ts';

export interface UploadWatchdogOptions {
  /** client_socket_timeout: a body that sends nothing for this long is cut off; also the rate window. */
  idleMs: number;
  /** A body slower than this on average over a whole window (a slowloris trickle) is cut off too; 0: off. */
  minBytesPerSecond: number;
}

/**
 * Passes an upload body through and cuts it off when it stalls or trickles. The request itself stays
 * open, so the route can still answer (408, or a refusal such as 413) and the image can be put back.
 */
export function watchUpload(req: IncomingMessage, res: ServerResponse, opts: UploadWatchdogOptions): Transform {
  // The body is taken from the request only once the service reads it, after its checks: reading it is
  // what sends `100 Continue` (expect-continue.ts), which a refusal must not be preceded by.
  const watchdog = new UploadWatchdog(opts, () => req.pipe(watchdog));
  // A failure of the body is its reader's to report. A client that hangs up after the reader has gone
  // (the answer sent, or the upload ended another way) must not end the process with an unheard error.
  watchdog.on('error', () => {});
  req.on('error', (err) => watchdog.destroy(err));
  req.on('aborted', () => watchdog.destroy(Object.assign(new Error('the client closed the connection'), { code: 'ECONNRESET' })));
  res.on('finish', () => {
    if (req.complete) return;
    // A service that refused before reading never consumes the watchdog: free its buffers and timer.
    // The rest of the body is the server's to drain (or the connection to close).
    req.unpipe(watchdog);
    watchdog.destroy();
  });
  return watchdog;
}

class UploadWatchdog extends Transform {
  private lastByteAt = Date.now();
  /** The rate's window: since when, and the bytes that arrived in it. */
  private windowStartedAt = Date.now();
  private windowBytes = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: UploadWatchdogOptions,
    private start: (() => void) | null,
  ) {
    super({ highWaterMark: INGEST_BUFFER_BYTES });
  }

  /** The first read starts the body, and the clock that judges it. */
  override _read(size: number): void {
    if (this.start) {
      const start = this.start;
      this.start = null;
      this.lastByteAt = this.windowStartedAt = Date.now();
      // 0 (or less) means wait forever, as Glance reads client_socket_timeout. Looked at a few times per
      // timeout: a body that stops just after a look is cut off soon after the timeout, not a whole one later.
      const every = Math.min(this.opts.idleMs, Math.max(250, Math.min(this.opts.idleMs / 4, 5_000)));
      this.timer = this.opts.idleMs > 0 ? setInterval(() => this.check(), every) : null;
      this.timer?.unref();
      start();
    }
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.lastByteAt = Date.now();
    this.windowBytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.timer) clearInterval(this.timer);
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer) clearInterval(this.timer);
    callback(err);
  }

  private check(): void {
    const seconds = this.opts.idleMs / 1000;
    const now = Date.now();
    // Downstream backpressure (a slow store) is not the client's fault: only judge while we wait for it.
    if (this.writableLength > 0 || this.readableLength >= this.readableHighWaterMark) {
      this.lastByteAt = this.windowStartedAt = now;
      this.windowBytes = 0;
      return;
    }
    if (now - this.lastByteAt >= this.opts.idleMs) {
      this.destroy(stalled(`no data arrived for ${seconds} seconds`));
      return;
    }
    if (now - this.windowStartedAt < this.opts.idleMs) return;
    if (this.opts.minBytesPerSecond > 0 && this.windowBytes < (this.opts.minBytesPerSecond * (now - this.windowStartedAt)) / 1000) {
      this.destroy(stalled(`fewer than ${this.opts.minBytesPerSecond} bytes per second arrived over ${seconds} seconds`));
      return;
    }
    this.windowStartedAt = now;
    this.windowBytes = 0;
  }
}

/** The rest of the body is never read: the connection closes after the answer. */
function stalled(why: string) {
  return gazeError('UPLOAD_STALLED', why).withHeaders({ Connection: 'close' });
}
