import { closeSync, createWriteStream, openSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { HashingStream } from '../ingest/hashing.ts';

/** How far the cache copy of a download may fall behind the client before it is given up. */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

export interface FillTarget {
  size: number;
  /** The image's md5, when it has one: the copy must have it. */
  checksum: string | null;
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
  /** Given up because the copy could not keep up with the client (the prefetcher can fill it later). */
  fellBehind = false;

  private constructor(
    readonly imageId: string,
    private readonly paths: { incomplete: string; final: string; invalid: string },
    private readonly target: FillTarget,
    fd: number,
    private readonly commit: (size: number, checksum: string) => void,
  ) {
    this.written = pipeline(this.hasher, createWriteStream('', { fd, highWaterMark: 1024 * 1024 }));
    this.written.catch(() => {});
  }

  /** Null when another fill of this image runs (its incomplete file exists). */
  static begin(imageId: string, paths: CacheFill['paths'], target: FillTarget, commit: (size: number, checksum: string) => void): CacheFill | null {
    let fd: number;
    try {
      fd = openSync(paths.incomplete, 'wx');
    } catch {
      return null;
    }
    try {
      return new CacheFill(imageId, paths, target, fd, commit);
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
  async consume(source: Readable, signal: AbortSignal): Promise<boolean> {
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

  /** The source ended: keeps the copy if it is this image's whole data. */
  async finish(): Promise<boolean> {
    if (this.abandoned) return false;
    if (!this.hasher.writableEnded) this.hasher.end();
    try {
      await this.written;
      const { md5 } = await this.hasher.digests;
      if (this.bytes !== this.target.size || (this.target.checksum !== null && md5 !== this.target.checksum)) {
        await rename(this.paths.incomplete, this.paths.invalid);
        return false;
      }
      await rename(this.paths.incomplete, this.paths.final);
      this.commit(this.bytes, md5!);
      return true;
    } catch {
      await rm(this.paths.incomplete, { force: true });
      return false;
    }
  }

  /** Gives the copy up (the download failed, or fell behind); the partial file goes. */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    this.hasher.destroy();
    const removePartial = () => rm(this.paths.incomplete, { force: true }).catch(() => {});
    void this.written.then(removePartial, removePartial);
  }
}
