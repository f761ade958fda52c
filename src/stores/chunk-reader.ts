import type { Readable } from 'node:stream';

/** Reads a stream in pieces of at most a given size, remembering what it was asked for but not given. */
export class ChunkReader {
  private readonly it: AsyncIterator<Buffer>;
  private rest: Buffer | null = null;
  ended = false;
  error: unknown = null;

  constructor(source: Readable) {
    this.it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** At most `max` bytes (never none), or null at the end. Throws (and keeps) the source's error. */
  async read(max: number): Promise<Buffer | null> {
    let chunk = this.rest;
    this.rest = null;
    // An empty chunk (an object-mode source may yield one) is no data: the next one is read.
    while (!chunk?.length) {
      if (this.ended) return null;
      try {
        const next = await this.it.next();
        if (next.done) {
          this.ended = true;
          return null;
        }
        chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      } catch (err) {
        this.error ??= err;
        this.ended = true;
        throw err;
      }
    }
    if (chunk.length > max) {
      this.rest = chunk.subarray(max);
      return chunk.subarray(0, max);
    }
    return chunk;
  }

  /** Chunks of `limit` bytes in all, or fewer when the stream ends first (then `ended` is set). */
  async readUpTo(limit: number): Promise<Buffer[]> {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < limit) {
      const chunk = await this.read(limit - total);
      if (!chunk) break;
      chunks.push(chunk);
      total += chunk.length;
    }
    // Look one chunk ahead, so that data of exactly `limit` bytes also counts as ended.
    if (!this.ended && this.rest === null) {
      const more = await this.read(Infinity);
      if (more) this.rest = more;
    }
    return chunks;
  }
}
