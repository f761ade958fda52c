import { closeSync, createWriteStream, openSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { HashingStream } from '../ingest/hashing.ts';

/** How far the cache copy of a download may fall behind the client before it is given up. */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

/** How a fill ended: put in the cache, refused (not the image's size or md5), or given up. */
export type FillOutcome = 'kept' | 'mismatch' | 'dropped';

export interface FillTarget {
  size: number;
  /** The image's md5, when it has one: the copy must have it. */
  checksum: string | null;
}

export interface FillHooks {
  /** The copy is in place: record it. */
  commit(size: number, checksum: string): void;
  /** The fill is over, however it ended (called once). */
  over(): void;
}

/**
 * One image being written into the cache: to `incomplete/<id>` (opened exclusively, so that one fill
 * per image runs on the node however many readers miss at once), hashed on the hash workers, and put
 * in place only when whole and matching the image's size and md5; anything else goes to `invalid/`.
 */
export class CacheFill {
  private readonly hasher = new HashingStream(['md5']);
  private readonly written: Promise<void>;
  private bytes = 0;
  private abandoned = false;
  private over = false;
  private released = false;
  /** Given up because the copy could not keep up with the client (the prefetcher can fill it later). */
  fellBehind = false;

  private constructor(
    readonly imageId: string,
    private readonly paths: { incomplete: string; final: string; invalid: string },
    private readonly target: FillTarget,
    fd: number,
    private readonly hooks: FillHooks,
  ) {
    this.written = pipeline(this.hasher, createWriteStream('', { fd, highWaterMark: 1024 * 1024 }));
    this.written.catch(() => {});
  }

  /** Null when another fill of this image runs (its incomplete file exists). */
  static begin(imageId: string, paths: CacheFill['paths'], target: FillTarget, hooks: FillHooks): CacheFill | null {
    let fd: number;
    try {
      fd = openSync(paths.incomplete, 'wx');
    } catch {
      return null;
    }
    try {
      return new CacheFill(imageId, paths, target, fd, hooks);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** A copy of bytes a client is being sent: never waits; a fill that falls too far behind is given up. */
  offer(chunk: Buffer): void {
    if (this.abandoned) return;
    if (this.hasher.writableLength > MAX_BACKLOG_BYTES) {
      this.fellBehind = true;
      return this.abandon();
    }
    this.bytes += chunk.length;
    this.hasher.write(chunk);
  }

  /** Fills from a source at the cache's own pace (the prefetcher), then finishes. */
  async consume(source: Readable, signal: AbortSignal): Promise<FillOutcome> {
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, counter, this.hasher, { signal });
    } catch {
      this.abandon();
    }
    return this.finish();
  }

  /** The source ended: keeps the copy if it is this image's whole data (and nobody gave it up meanwhile). */
  async finish(): Promise<FillOutcome> {
    if (this.abandoned) return 'dropped';
    if (!this.hasher.writableEnded) this.hasher.end();
    try {
      await this.written;
      const { md5 } = await this.hasher.digests;
      if (this.abandoned) throw new Error('given up');
      if (this.bytes !== this.target.size || (this.target.checksum !== null && md5 !== this.target.checksum)) {
        await rename(this.paths.incomplete, this.paths.invalid);
        return this.end('mismatch');
      }
      await rename(this.paths.incomplete, this.paths.final);
      if (this.abandoned) {
        // Given up while it was being put in place (its image was deleted or deactivated meanwhile).
        await rm(this.paths.final, { force: true });
        return this.end('dropped');
      }
      this.over = true;
      this.hooks.commit(this.bytes, md5!);
      return this.end('kept');
    } catch {
      await rm(this.paths.incomplete, { force: true });
      return this.end('dropped');
    }
  }

  private end(outcome: FillOutcome): FillOutcome {
    this.over = true;
    this.release();
    return outcome;
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.hooks.over();
  }

  /** Gives the copy up (the download failed or fell behind, or the image went); the partial file goes. */
  abandon(): void {
    // A finished fill's incomplete/ path may be another fill's now.
    if (this.abandoned || this.over) return;
    this.abandoned = true;
    this.release();
    this.hasher.destroy();
    const removePartial = () => rm(this.paths.incomplete, { force: true }).catch(() => {});
    void this.written.then(removePartial, removePartial);
  }
}
