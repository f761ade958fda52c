import { timerMs } from '../domain/time.ts';
import { Transform, type Readable } from 'node:stream';
import type { RequestContext } from '../auth/context.ts';
import type { Image } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import type { ImageCache, CachedImage } from '../cache/image-cache.ts';
import type { CacheFill, FillOutcome } from '../cache/cache-fill.ts';
import type { ByteRange } from '../stores/driver.ts';
import type { ServiceDeps } from './deps.ts';
import { canSee, targetFor } from './access.ts';

/** How long a filling download's last bytes wait for the copy's check. */
const LAST_BYTES_WAIT_MS = 30_000;

export interface CacheSettings {
  /** image_cache_max_size: pruned down to this after each fill and periodically. */
  maxBytes: number;
  /** image_cache_stall_time: a fill untouched this long is given up. */
  stallSeconds: number;
  /** cache_prefetcher_interval: how often queued images are fetched (and the cache cleaned). */
  prefetchIntervalSeconds: number;
  /** Whether downloads go through the cache (paste flavor with caching or cachemanagement). */
  serveDownloads: boolean;
}

/**
 * The image cache of this node as the service uses it: downloads served from it or filling it, the
 * cache API (image API 2.14–2.16), the prefetcher of queued images and the periodic clean-up. Null
 * cache: image_cache_dir is not set; the API then answers as Glance does.
 */
export class ImageCacheService {
  private timer: NodeJS.Timeout | null = null;
  private prefetching: Promise<void> | null = null;
  private readonly stopping = new AbortController();

  constructor(
    private readonly deps: ServiceDeps,
    readonly cache: ImageCache | null,
    private readonly settings: CacheSettings,
  ) {}

  /** The cached bytes of an active image (`length` of them), when the cache holds exactly its data. */
  async cachedData(image: Image, range: ByteRange | undefined, length: number): Promise<Readable | null> {
    if (!this.cache || !this.settings.serveDownloads) return null;
    if (image.status !== 'active') {
      await this.cache.evict(image.id);
      return null;
    }
    if (!(await this.cache.holds(image))) return null;
    const stream = await this.cache.read(image.id, range);
    if (!stream) return null;
    stream.once('end', () => this.deps.metrics?.storeBytes.inc({ store: 'cache', direction: 'out' }, length));
    return stream;
  }

  /**
   * A whole download from a store, copied into the cache as it passes, without ever holding the client
   * back. Its last bytes wait for the copy's check: data that is not the image's (a store that changed
   * it) is cut off before its end, so the client sees a broken transfer, as from Glance's cache.
   */
  passThrough(image: Image, stream: Readable): Readable {
    if (!this.cache || !this.settings.serveDownloads || image.status !== 'active' || image.size === null) return stream;
    const fill = this.cache.beginFill({ id: image.id, size: image.size, checksum: image.checksum });
    if (!fill) return stream; // being filled by another reader already
    let ended = false;
    let held: Buffer | null = null;
    const tee = new Transform({
      transform(chunk: Buffer, _enc, done) {
        fill.offer(chunk);
        if (chunk.length === 0) return done();
        // Each chunk goes out when the next comes; the first but its last byte at once, so that the
        // answer's headers are not held back.
        const previous = held ?? chunk.subarray(0, chunk.length - 1);
        held = held ? chunk : chunk.subarray(chunk.length - 1);
        done(null, previous.length ? previous : undefined);
      },
      flush: (done) => {
        ended = true;
        if (fill.fellBehind) return done(null, held ?? undefined);
        // A cache disk that hangs must not hold the client's last bytes for ever: after a while they go
        // unchecked (the fill finishes, or not, on its own).
        let answered = false;
        const answer = (err: Error | null) => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          done(err, held ?? undefined);
        };
        const timer = setTimeout(() => answer(null), LAST_BYTES_WAIT_MS);
        this.finishFill(fill).then(
          (outcome) => answer(outcome === 'mismatch' ? new Error(`the data of image ${image.id} is not the image's (size or checksum)`) : null),
          () => answer(null),
        );
      },
    });
    tee.on('close', () => {
      // The client went away: so does the read from the store (pipe() does not pass that on).
      if (!ended) {
        stream.destroy();
        fill.abandon();
      }
      // Too fast a client for the copy to keep up with: the prefetcher fills the cache from the store instead.
      if (fill.fellBehind && this.cache) {
        this.cache.queue(image.id);
        void this.prefetch();
      }
    });
    stream.on('error', (err) => tee.destroy(err));
    return stream.pipe(tee);
  }

  private async finishFill(fill: CacheFill): Promise<FillOutcome> {
    const outcome = await fill.finish();
    if (outcome === 'kept') await this.cache!.prune(this.settings.maxBytes);
    if (outcome === 'mismatch') this.deps.log.warn({ image: fill.imageId }, 'the data read for the cache did not match the image and was discarded');
    return outcome;
  }

  /** The image is gone or not active any more: its copy must never be served. */
  async forget(id: string): Promise<void> {
    if (this.cache) await this.cache.evict(id);
  }

  // The cache API: policies first, then whether this node has a cache (Glance's order).

  async state(ctx: RequestContext): Promise<{ cached_images: CachedImage[]; queued_images: string[] }> {
    this.enforce(ctx, 'cache_list');
    const cache = this.required();
    return { cached_images: cache.list(), queued_images: cache.queued() };
  }

  async queue(ctx: RequestContext, id: string): Promise<void> {
    const image = await this.visible(ctx, id);
    if (!image) throw gazeError('CACHE_IMAGE_NOT_FOUND', id);
    this.enforce(ctx, 'cache_image', image);
    const cache = this.required();
    if (image.status !== 'active') throw gazeError('CACHE_QUEUE_NOT_ACTIVE');
    cache.queue(id);
    void this.prefetch();
  }

  async remove(ctx: RequestContext, id: string): Promise<void> {
    const image = await this.visible(ctx, id);
    if (!image && this.cache && !this.cache.isCached(id) && !this.cache.queued().includes(id)) throw gazeError('CACHE_IMAGE_NOT_FOUND', id);
    this.enforce(ctx, 'cache_delete', image ?? undefined);
    const cache = this.required();
    await cache.evict(id);
    cache.dequeue(id);
  }

  async clear(ctx: RequestContext, targetHeader: string | undefined): Promise<{ cache_deleted?: number; queue_deleted?: number }> {
    this.enforce(ctx, 'cache_delete');
    const cache = this.required();
    const target = (targetHeader ?? '').toLowerCase();
    if (!['', 'cache', 'queue'].includes(target)) throw gazeError('CACHE_CLEAR_TARGET');
    return {
      ...(target !== 'queue' ? { cache_deleted: await cache.clearCached() } : {}),
      ...(target !== 'cache' ? { queue_deleted: cache.clearQueued() } : {}),
    };
  }

  private async visible(ctx: RequestContext, id: string): Promise<Image | null> {
    const image = id.length <= 36 ? await this.deps.images.get(id) : null;
    return image && (await canSee(this.deps, ctx, image)) ? image : null;
  }

  private enforce(ctx: RequestContext, rule: string, image?: Image): void {
    const target = image ? targetFor(this.deps, ctx, image) : {};
    this.deps.policy.enforce(rule, ctx, target);
  }

  private required(): ImageCache {
    if (!this.cache) throw gazeError('CACHE_API_UNSUPPORTED');
    return this.cache;
  }

  // Background work: the prefetcher, then clean-up and pruning, every cache_prefetcher_interval.

  start(): void {
    if (!this.cache) return;
    const tick = () => void this.prefetch().then(() => this.cleanUp());
    tick();
    this.timer = setInterval(tick, timerMs(this.settings.prefetchIntervalSeconds));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stopping.abort();
    await this.prefetching?.catch(() => {});
    this.cache?.close();
  }

  /** Fetches every queued image into the cache (one run at a time); images not active are dropped from the queue. */
  prefetch(): Promise<void> {
    this.prefetching ??= this.prefetchQueued().finally(() => (this.prefetching = null));
    return this.prefetching;
  }

  private async prefetchQueued(): Promise<void> {
    const cache = this.cache;
    if (!cache) return;
    for (const id of cache.queued()) {
      if (this.stopping.signal.aborted) return;
      try {
        const image = await this.deps.images.get(id);
        // Images no longer active leave the queue; the others once they are in the cache.
        const done =
          !image ||
          image.status !== 'active' ||
          image.size === null ||
          (await cache.holds(image)) ||
          (await this.fetchInto(cache, image as Image & { size: number }));
        if (done) cache.dequeue(id);
      } catch (err) {
        this.deps.log.warn({ err, image: id }, 'prefetching an image into the cache failed; it stays queued');
      }
    }
  }

  /** Whether the image is in the cache now. */
  private async fetchInto(cache: ImageCache, image: Image & { size: number }): Promise<boolean> {
    const fill = cache.beginFill(image);
    if (!fill) return false;
    const source = await this.deps.stores.openFirst(image.locations, {
      size: image.size,
      failed: (url, err) => this.deps.log.warn({ err, image: image.id }, `cannot read ${url} to cache it; trying the next location`),
    });
    if (!source) {
      fill.abandon();
      return false;
    }
    if ((await fill.consume(source, this.stopping.signal)) !== 'kept') return false;
    await cache.prune(this.settings.maxBytes);
    return true;
  }

  /** Stalled fills and invalid copies go; so do copies of images that are gone or not active; then LRU pruning. */
  async cleanUp(): Promise<void> {
    const cache = this.cache;
    if (!cache) return;
    try {
      await cache.sweep(this.settings.stallSeconds * 1000);
      for (const { image_id } of cache.list()) {
        const image = await this.deps.images.get(image_id);
        if (!image || image.status !== 'active') await cache.evict(image_id);
      }
      await cache.prune(this.settings.maxBytes);
    } catch (err) {
      this.deps.log.warn({ err }, 'cleaning the image cache failed');
    }
  }
}
