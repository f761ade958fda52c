import type { Logger } from '../util/logger.ts';
import { moveTo, UPLOAD_NODE } from '../domain/image.ts';
import type { ServiceDeps } from './deps.ts';

/**
 * Uploads and stages this process is writing, so that a delete can stop them at once, and the resets to
 * `queued` that failed when their write did.
 */
export class UploadRegistry {
  private readonly active = new Map<string, Set<AbortController>>();
  /** Resets that failed (the database away): until one is done the image names this live process as its writer. */
  private readonly failedResets = new Map<string, () => Promise<unknown>>();
  private readonly retrying = new Map<string, Promise<unknown>>();

  begin(imageId: string): AbortController {
    const controller = new AbortController();
    let set = this.active.get(imageId);
    if (!set) this.active.set(imageId, (set = new Set()));
    set.add(controller);
    return controller;
  }

  end(imageId: string, controller: AbortController): void {
    const set = this.active.get(imageId);
    set?.delete(controller);
    if (set && set.size === 0) this.active.delete(imageId);
  }

  /** Whether an upload or stage of the image is being written by this process. */
  has(imageId: string): boolean {
    return this.active.has(imageId);
  }

  /**
   * Runs a write of the image registered for all of its life: from before the image names this process
   * as its writer (an import through this node sees it running), and after any retried reset of the
   * image's last write (whose compare-and-set must not meet this write's claim).
   */
  async writing<T>(imageId: string, write: (controller: AbortController) => Promise<T>): Promise<T> {
    const controller = this.begin(imageId);
    try {
      await this.settled(imageId);
      return await write(controller);
    } finally {
      this.end(imageId, controller);
    }
  }

  abort(imageId: string): void {
    for (const c of this.active.get(imageId) ?? []) c.abort(new Error(`image ${imageId} was deleted`));
  }

  /**
   * Puts an image back after its write failed. `reset` is a compare-and-set that holds only while the
   * image still names this process as its writer; one that fails is tried again by retryResets(), since
   * no other node puts back the image of a live writer. True when the image is back now.
   */
  async putBack(imageId: string, reset: () => Promise<unknown>, log: Logger): Promise<boolean> {
    try {
      return (await reset()) !== false;
    } catch (err) {
      log.error({ err, image: imageId }, 'putting the image back to queued failed; retried every 30 s');
      this.failedResets.set(imageId, reset);
      return false;
    }
  }

  /** Waits for a retried reset of the image to finish. */
  private async settled(imageId: string): Promise<void> {
    await this.retrying.get(imageId)?.catch(() => {});
  }

  /** Tries the failed resets again (the node's periodic pass); one whose image is being written again waits. */
  async retryResets(log: Logger): Promise<void> {
    for (const [imageId, reset] of this.failedResets) {
      if (this.has(imageId)) continue;
      const attempt = reset();
      this.retrying.set(imageId, attempt);
      try {
        await attempt;
        this.failedResets.delete(imageId);
      } catch (err) {
        log.error({ err, image: imageId }, 'putting the image back to queued failed again');
      } finally {
        this.retrying.delete(imageId);
      }
    }
  }
}

/**
 * Whether a failed upload's or stage's image was deleted meanwhile. A read that fails (the database away)
 * counts as not deleted: the write is then put back, or its reset retried, rather than left saving.
 */
export async function isDeleted(deps: { images: { get(id: string): Promise<unknown> } }, imageId: string): Promise<boolean> {
  return (await deps.images.get(imageId).catch(() => 'unknown')) === null;
}

/**
 * Takes a queued image for this node's upload (`saving`) or stage (`uploading`): who writes is recorded
 * with the status, so that another node's start never takes a live write for a dead one. Checked against
 * image_count_uploading with the claim (413, the claim undone). False when the image was no longer queued.
 */
export function claimForWrite(
  deps: Pick<ServiceDeps, 'quotas' | 'images' | 'nodeId'>,
  owner: string | null,
  imageId: string,
  to: 'saving' | 'uploading',
): Promise<boolean> {
  return deps.quotas.claimTakingData(owner, (within) =>
    deps.images.updateFields(imageId, 'queued', moveTo(to, null), { [UPLOAD_NODE]: deps.nodeId }, { within }),
  );
}
