import type { FileHandle } from 'node:fs/promises';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** One read, one socket write: large enough that each costs little, small enough to share. */
const CHUNK_BYTES = 4 << 20;
/** Chunks of one download in flight at once (read ahead while the socket sends). */
const CHUNKS_PER_SEND = 3;
/** Reused chunks kept for all downloads together (32 MiB); more are allocated when needed and dropped. */
const POOLED_CHUNKS = 8;

// Fresh multi-MiB buffers cost page faults and garbage collection on every read; on a virtual machine
// that halves what a download reaches. Chunks whose bytes the kernel has taken are used again.
const pool: Buffer[] = [];
function takeChunk(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}
function giveBack(chunk: Buffer): void {
  if (pool.length < POOLED_CHUNKS) pool.push(chunk);
}

/**
 * The bytes [start, end] of an open file (closed when the stream ends or is destroyed). Piped into an
 * HTTP response (what a download does), it writes the response itself from reused chunks, each taken
 * back once the socket has accepted it; any other consumer gets ordinary fresh chunks.
 */
export class FileRangeReader extends Readable {
  private position: number;
  private sending = false;

  constructor(
    private readonly handle: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.position = start;
  }

  override _read(size: number): void {
    if (this.sending) return;
    const length = Math.min(Math.max(size, 1 << 20), this.end - this.position + 1);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const chunk = Buffer.allocUnsafeSlow(length);
    this.handle.read(chunk, 0, length, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) return this.destroy(new Error('the file ended before the expected size'));
        this.position += bytesRead;
        this.push(bytesRead === length ? chunk : chunk.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    if (!(destination instanceof ServerResponse) || options?.end === false || this.sending) return super.pipe(destination, options);
    this.sending = true;
    this.send(destination).then(
      () => {
        // Ends the readable side, so whoever watches this stream sees it finish.
        this.push(null);
        this.resume();
      },
      (err: Error) => this.destroy(err),
    );
    return destination;
  }

  private async send(res: ServerResponse): Promise<void> {
    let inFlight = 0;
    let wake: (() => void) | null = null;
    const settle = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    res.on('drain', settle);
    res.on('close', settle);
    try {
      while (this.position <= this.end) {
        while ((inFlight >= CHUNKS_PER_SEND || res.writableNeedDrain) && !this.stopped(res))
          await new Promise<void>((r) => {
            wake = r;
          });
        if (this.stopped(res)) return;
        const chunk = takeChunk();
        const length = Math.min(chunk.length, this.end - this.position + 1);
        let bytesRead: number;
        try {
          ({ bytesRead } = await this.handle.read(chunk, 0, length, this.position));
        } catch (err) {
          giveBack(chunk);
          throw err;
        }
        if (bytesRead === 0) {
          giveBack(chunk);
          throw new Error('the file ended before the expected size');
        }
        if (this.stopped(res)) return giveBack(chunk);
        this.position += bytesRead;
        inFlight++;
        res.write(chunk.subarray(0, bytesRead), () => {
          inFlight--;
          giveBack(chunk);
          settle();
        });
      }
      res.end();
    } finally {
      res.off('drain', settle);
      res.off('close', settle);
    }
  }

  private stopped(res: ServerResponse): boolean {
    return this.destroyed || res.destroyed;
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
