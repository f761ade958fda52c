import type { ImagesRepo } from '../db/repos/images.ts';
import { ImageCache } from './image-cache.ts';

// `gaze cache ...`: the operator's view of this node's cache, like Glance's glance-cache-manage and
// glance-cache-prune, working on the cache directory itself (a running service sees the changes at once;
// its prefetcher fetches what is queued here at its next run).

export interface CacheCommandOptions {
  dir: string;
  database: string;
  maxBytes: number;
  stallSeconds: number;
  /** For `queue`: only active images are queued. */
  images: ImagesRepo;
  print(line: string): void;
}

const iso = (seconds: number) => (seconds ? new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, '') : 'N/A');

export async function runCacheCommand(verb: string | undefined, operands: string[], target: string | undefined, opts: CacheCommandOptions): Promise<void> {
  const cache = new ImageCache(opts.dir, opts.database);
  const { print } = opts;
  try {
    switch (verb) {
      case 'list': {
        print(['ID', 'State', 'Last Accessed (UTC)', 'Last Modified (UTC)', 'Size', 'Hits'].join('\t'));
        for (const e of cache.list()) print([e.image_id, 'cached', iso(e.last_accessed), iso(e.last_modified), e.size, e.hits].join('\t'));
        for (const id of cache.queued()) print([id, 'queued', 'N/A', 'N/A', 'N/A', 'N/A'].join('\t'));
        return;
      }
      case 'queue':
        for (const id of need(operands, 'queue')) {
          const image = await opts.images.get(id);
          if (!image) throw new Error(`image ${id} not found`);
          if (image.status !== 'active') throw new Error(`image ${id} is ${image.status}: only active images can be queued`);
          cache.queue(id);
          print(`gaze: image ${id} queued for caching`);
        }
        return;
      case 'delete':
        for (const id of need(operands, 'delete')) {
          const evicted = await cache.evict(id);
          const dequeued = cache.dequeue(id);
          const found = evicted || dequeued;
          print(found ? `gaze: image ${id} removed from the cache` : `gaze: image ${id} is neither cached nor queued`);
        }
        return;
      case 'clear': {
        const what = target ?? 'both';
        if (!['both', 'cache', 'queue'].includes(what)) throw new Error('--target must be both, cache or queue');
        const cached = what === 'queue' ? 0 : await cache.clearCached();
        const queued = what === 'cache' ? 0 : cache.clearQueued();
        print(`gaze: ${cached} cached and ${queued} queued images removed`);
        return;
      }
      case 'prune': {
        const swept = await cache.sweep(opts.stallSeconds * 1000);
        const evicted = await cache.prune(opts.maxBytes);
        print(
          `gaze: ${evicted.length} images pruned (cache now ${cache.totalSize()} of ${opts.maxBytes} bytes); ${swept.stalled} stalled fills, ${swept.invalid} invalid copies removed`,
        );
        return;
      }
      default:
        throw new Error(`unknown cache command '${verb ?? ''}': use list, queue ID..., delete ID..., clear [--target both|cache|queue] or prune`);
    }
  } finally {
    cache.close();
  }
}

function need(operands: string[], verb: string): string[] {
  if (operands.length === 0) throw new Error(`cache ${verb} needs at least one image id`);
  return operands;
}
