import { addSeconds, nowTimestamp } from '../domain/time.ts';
import type { ServiceDeps } from './deps.ts';
import { scrubLocation } from '../ingest/store-data.ts';

/**
 * Removes queued data (locations in pending_delete: deleted images, failed imports, store deletes that
 * failed) from the stores, at start and then periodically, until each store confirms. A location is
 * taken only once it has been queued for `graceSeconds`: a write still under way when its image was
 * deleted has stopped by then (it aborts within a heartbeat) and cleans up after itself first.
 */
export class DataScrubber {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly deps: ServiceDeps,
    /** `alsoSweep`: more of the same kind of cleanup, run on every pass (orphaned parts in object stores). */
    private readonly opts: { intervalSeconds: number; graceSeconds: number; alsoSweep?: () => Promise<void> },
  ) {}

  start(): void {
    void this.run();
    this.timer = setInterval(() => void this.run(), this.opts.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass; concurrent calls share it. */
  run(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    try {
      const settledBefore = addSeconds(nowTimestamp(), -this.opts.graceSeconds);
      for (const location of await this.deps.images.locationsToScrub(500, settledBefore)) await scrubLocation(this.deps, location);
      await this.opts.alsoSweep?.();
    } catch (err) {
      this.deps.log.error({ err }, 'the data scrubber failed');
    }
  }
}
