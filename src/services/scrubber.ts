import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { timerMs } from '../domain/time.ts';
import type { ServiceDeps } from './deps.ts';
import { scrubLocation } from '../ingest/store-data.ts';
import type { ImageLocation } from '../domain/image.ts';

/** What the scrubber works with: the image rows, the delayed deletes, the stores and the log. */
export type ScrubDeps = Pick<ServiceDeps, 'images' | 'delayedDeletes' | 'stores' | 'log'>;

/** What one pass did: delayed deletes ended, locations whose data went, those kept for a later pass, and whether it got to its end. */
export interface ScrubPass {
  imagesDeleted: number;
  locationsRemoved: number;
  locationsKept: number;
  complete: boolean;
}

/**
 * Removes queued data (locations in pending_delete: deleted images, failed imports, store deletes that
 * failed) from the stores, at start and then periodically, until each store confirms. A location is
 * taken only once it has been queued for `graceSeconds`: a write still under way when its image was
 * deleted has stopped by then (it aborts within a heartbeat) and cleans up after itself first. Images
 * deleted with delayed_delete wait `scrubTimeSeconds` (at least the grace) from their deletion; their
 * delete is ended first, so that a restore can no longer take them, and then their data goes. This is
 * the work of Glance's glance-scrubber, done by every node.
 */
export class DataScrubber {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ScrubPass> | null = null;

  constructor(
    private readonly deps: ScrubDeps,
    /** `alsoSweep`: more of the same kind of cleanup, run on every pass (orphaned parts in object stores). */
    private readonly opts: { intervalSeconds: number; graceSeconds: number; scrubTimeSeconds?: number; alsoSweep?: () => Promise<void> },
  ) {}

  start(): void {
    void this.run();
    this.timer = setInterval(() => void this.run(), timerMs(this.opts.intervalSeconds));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass; concurrent calls share it. */
  run(): Promise<ScrubPass> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<ScrubPass> {
    const done: ScrubPass = { imagesDeleted: 0, locationsRemoved: 0, locationsKept: 0, complete: false };
    const scrub = async (location: ImageLocation) => {
      const outcome = await scrubLocation(this.deps, location);
      if (outcome === 'removed') done.locationsRemoved++;
      else if (outcome === 'kept') done.locationsKept++;
    };
    let failures = 0;
    try {
      const deletedBefore = addSeconds(nowTimestamp(), -Math.max(this.opts.graceSeconds, this.opts.scrubTimeSeconds ?? 0));
      for (const id of await this.deps.delayedDeletes.due(deletedBefore, 100)) {
        try {
          const locations = await this.deps.delayedDeletes.finish(id);
          if (!locations) continue; // restored meanwhile
          for (const location of locations) await scrub(location);
          done.imagesDeleted++;
        } catch (err) {
          // One image that fails (a deadlock, say) is tried again next time; the others go on.
          failures++;
          this.deps.log.error({ err }, `could not end the delayed delete of image ${id}`);
        }
      }
      const settledBefore = addSeconds(nowTimestamp(), -this.opts.graceSeconds);
      for (const location of await this.deps.images.locationsToScrub(500, settledBefore)) await scrub(location);
      await this.opts.alsoSweep?.();
      done.complete = failures === 0;
    } catch (err) {
      this.deps.log.error({ err }, 'the data scrubber failed');
    }
    return done;
  }
}
