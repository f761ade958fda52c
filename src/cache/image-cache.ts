import { mkdirSync } from 'node:fs';
import { open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CacheFill, type FillTarget } from './cache-fill.ts';
import { CacheIndex, type CachedImage } from './cache-index.ts';

export type { CachedImage } from './cache-index.ts';

// Glance's local image cache of an API node: whole images in files named by image id, an index of
// them, incomplete fills and invalid copies apart. Everything here is local to the node.

const IMAGE_ID = /^[0-9a-fA-F-]{1,64}$/;
const UNINDEXED_GRACE_MS = 60_000;

export interface ImageFacts {
  id: string;
  size: number | null;
  checksum: string | null;
}

export class ImageCache {
  private readonly index: CacheIndex;
  private readonly databasePath: string;
  /** The fills running in this process, so that evicting an image also gives up its fill. */
  private readonly fills = new Map<string, CacheFill>();

  constructor(
    readonly dir: string,
    databaseName = 'cache.db',
  ) {
    for (const sub of ['', 'incomplete', 'invalid']) mkdirSync(path.join(dir, sub), { recursive: true });
    this.databasePath = path.isAbsolute(databaseName) ? databaseName : path.join(dir, databaseName);
    this.index = new CacheIndex(this.databasePath);
  }

  private paths(id: string) {
    if (!IMAGE_ID.test(id)) throw new Error(`not an image id: ${id}`);
    return { final: path.join(this.dir, id), incomplete: path.join(this.dir, 'incomplete', id), invalid: path.join(this.dir, 'invalid', id) };
  }

  /** Whether the cache holds exactly this image's data (size and md5); a copy that does not match is evicted. */
  async holds(image: ImageFacts): Promise<boolean> {
    const record = this.index.get(image.id);
    if (!record) return false;
    const onDisk = await stat(this.paths(image.id).final).catch(() => null);
    if (onDisk?.size === image.size && record.size === image.size && (image.checksum === null || record.checksum === image.checksum)) return true;
    await this.evict(image.id);
    return false;
  }

  /**
   * The cached bytes (a range, inclusive, or all), opened before anything is answered: a copy evicted
   * since holds() looked (a prune, a delete, another process's `gaze cache clear`) is null, and the
   * download goes to the store, where a stream that fails at its first read would have been a 500.
   * Counts as a hit.
   */
  async read(id: string, range?: { start: number; end: number }): Promise<Readable | null> {
    const file = await open(this.paths(id).final, 'r').catch(() => null);
    if (!file) return null;
    this.index.hit(id);
    return file.createReadStream({ ...range, highWaterMark: 1024 * 1024 });
  }

  /** Starts putting an image into the cache; null when it is being filled already. */
  beginFill(image: ImageFacts & { size: number }): CacheFill | null {
    const target: FillTarget = { size: image.size, checksum: image.checksum };
    const fill = CacheFill.begin(image.id, this.paths(image.id), target, {
      commit: (size, checksum) => {
        this.index.put(image.id, size, checksum);
        this.index.dequeue(image.id); // queued meanwhile: it is there now
      },
      over: () => this.fills.delete(image.id),
    });
    if (fill) this.fills.set(image.id, fill);
    return fill;
  }

  /** Removes an image's copy, and gives up a fill of it under way; whether there was a copy. */
  async evict(id: string): Promise<boolean> {
    this.fills.get(id)?.abandon();
    const had = this.index.remove(id);
    await rm(this.paths(id).final, { force: true });
    return had;
  }

  list(): CachedImage[] {
    return this.index.list();
  }

  isCached(id: string): boolean {
    return this.index.get(id) !== undefined;
  }

  /** Queues an image for the prefetcher, unless it is cached already (as Glance's queue_image). */
  queue(id: string): void {
    if (!this.isCached(id)) this.index.queue(id);
  }

  dequeue(id: string): boolean {
    return this.index.dequeue(id);
  }

  queued(): string[] {
    return this.index.queued();
  }

  async clearCached(): Promise<number> {
    let n = 0;
    for (const { image_id } of this.index.list()) if (await this.evict(image_id)) n++;
    return n;
  }

  clearQueued(): number {
    return this.index.clearQueue();
  }

  totalSize(): number {
    return this.index.totalSize();
  }

  /** Evicts least recently used images until the cache holds at most `maxBytes`; the ids evicted. */
  async prune(maxBytes: number): Promise<string[]> {
    let total = this.index.totalSize();
    const evicted: string[] = [];
    for (const entry of this.index.leastRecentlyUsed()) {
      if (total <= maxBytes) break;
      await this.evict(entry.image_id);
      total -= entry.size;
      evicted.push(entry.image_id);
    }
    return evicted;
  }

  /**
   * Removes fills that stopped (their file untouched for `stallMs`: a process died mid-way), invalid
   * copies, and files the index does not know (a crash between the file and its row).
   */
  async sweep(stallMs: number): Promise<{ stalled: number; invalid: number; unknown: number }> {
    const result = { stalled: 0, invalid: 0, unknown: 0 };
    for (const name of await readdir(path.join(this.dir, 'incomplete'))) {
      const file = path.join(this.dir, 'incomplete', name);
      const info = await stat(file).catch(() => null);
      if (info && Date.now() - info.mtimeMs > stallMs) {
        await rm(file, { force: true });
        result.stalled++;
      }
    }
    for (const name of await readdir(path.join(this.dir, 'invalid'))) {
      await rm(path.join(this.dir, 'invalid', name), { force: true });
      result.invalid++;
    }
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (!entry.isFile() || !IMAGE_ID.test(entry.name) || this.index.get(entry.name) || this.isIndexFile(entry.name)) continue;
      // A fill that has just put its file in place writes its row a moment later.
      const info = await stat(path.join(this.dir, entry.name)).catch(() => null);
      if (info && Date.now() - info.mtimeMs > UNINDEXED_GRACE_MS) {
        await rm(path.join(this.dir, entry.name), { force: true });
        result.unknown++;
      }
    }
    return result;
  }

  /** The index's own files (image_cache_sqlite_db may be a name an image id could have, such as `db`). */
  private isIndexFile(name: string): boolean {
    const file = path.join(this.dir, name);
    return file === this.databasePath || file.startsWith(`${this.databasePath}-`);
  }

  close(): void {
    this.index.close();
  }
}
