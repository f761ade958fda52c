import type { Readable } from 'node:stream';
import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import type { Image } from '../domain/image.ts';
import { gazeError, isGazeError } from '../domain/errors.ts';
import { resetToQueued, assertTransition, stageEnded, STAGE_HOST, UPLOAD_NODE } from '../domain/image.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage, refuseUnlessOwner, findVisibleImage } from './access.ts';
import { notifyImage } from '../notify/image-events.ts';
import { claimForWrite, isDeleted, type UploadRegistry } from './uploads.ts';
import { checkAgain, type ByteBudget } from '../quota/quotas.ts';
import { IngestAborted, storeWriteRefusal } from '../ingest/pipeline.ts';
import { StoreError } from '../stores/driver.ts';
import type { StagingArea } from '../import/staging-area.ts';
import { LIVE_WRITE_MS } from './upload-recovery.ts';

/** How this node finds where staged data is: its own URL, and whether staging is shared by every node. */
export interface StagingPlace {
  selfUrl: string | null;
  shared: boolean;
  /**
   * Whether a stage of the image is still being written, on any node: this process's, or one that named
   * its writer on the image and has not finished (a stage's end forgets the writer; a writer that died
   * is forgotten by the upload recovery). A live local partial file counts too.
   */
  stageRunning(image: Image): Promise<boolean>;
}

/**
 * The node a request about an image's staged data must be replayed to (the one whose local staging holds
 * it), or null when this node can act on it: here, or in staging every node shares.
 */
export function stagedElsewhere(image: Image, place: StagingPlace): string | null {
  if (image.status !== 'uploading') return null; // only an uploading image has staged data to go to
  const stageHost = image.properties[STAGE_HOST];
  return !place.shared && stageHost && stageHost !== place.selfUrl ? stageHost : null;
}

/** PUT /v2/images/{id}/stage: the first half of glance-direct (spec import.md §2). */
export class StagingService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly uploads: UploadRegistry,
    private readonly staging: StagingArea,
    private readonly opts: { importMethods: string[]; selfUrl: string | null },
  ) {}

  get place(): StagingPlace {
    return {
      selfUrl: this.opts.selfUrl,
      shared: this.staging.shared,
      stageRunning: async (image) => {
        if (this.uploads.has(image.id)) return true;
        // Another node's stage names it until it ends; one whose writer died is forgotten by the upload
        // recovery. A staging store that cannot answer now leaves the judgement to the import's task.
        const writer = image.properties[UPLOAD_NODE];
        if (image.status === 'uploading' && typeof writer === 'string' && writer !== this.deps.nodeId) {
          return (await this.staging.size(image.id).catch(() => 0)) === null;
        }
        return this.staging.writeInProgress(image.id, LIVE_WRITE_MS);
      },
    };
  }

  /** Checks that come before the content type is even looked at. */
  assertAvailable(): void {
    if (!this.opts.importMethods.includes('glance-direct')) throw gazeError('METHOD_NOT_AVAILABLE', 'glance-direct');
  }

  async stage(ctx: RequestContext, id: string, source: Readable, sizeHint?: number): Promise<void> {
    refuseReadOnlyCaller(ctx);
    this.assertAvailable();
    const image = await findVisibleImage(this.deps, ctx, id);
    await authorizeOnImage(this.deps, ctx, 'modify_image', image);
    assertTransition(image.status, 'uploading');
    refuseUnlessOwner(ctx, image);
    if ((await this.staging.size(id)) !== null) throw gazeError('STAGED_DATA_EXISTS', id);
    const budget = await this.deps.quotas.admitWrite(image.owner, id, 'stage', sizeHint);
    await this.uploads.writing(id, (controller) => this.write(image, source, controller, sizeHint, budget));
  }

  private async write(image: Image, source: Readable, controller: AbortController, sizeHint: number | undefined, budget: ByteBudget | null): Promise<void> {
    const id = image.id;
    if (!(await claimForWrite(this.deps, image.owner, id, 'uploading'))) {
      const now = await this.deps.images.get(id);
      if (!now) throw gazeError('IMAGE_NOT_FOUND', id);
      throw gazeError('STATUS_TRANSITION', now.status, 'uploading');
    }
    try {
      await notifyImage(this.deps, 'image.update', id);
      const heldBefore = await this.deps.quotas.holdAnnounced(image.owner, id, 'uploading', budget, sizeHint, 'staged');
      const result = await this.staging.write({ source, key: id, sizeCap: this.deps.settings.imageSizeCap, signal: controller.signal, sizeHint, budget });
      // The staged size replaces the hold; checked again when the stage may have taken more than it held.
      const recheck = checkAgain(budget, heldBefore, result.size);
      const held = await this.deps.quotas.hold(
        image.owner,
        id,
        ['uploading'],
        { size: result.size, reserved_bytes: null, staged_bytes: null },
        recheck ? { staged: result.size } : {},
      );
      if (!held) return await this.lost(id);
      // One write ends the stage, while this node still holds the image (imports and deletes of local
      // staged data are replayed to the node it names).
      const ended = stageEnded(this.staging.shared ? null : this.opts.selfUrl);
      if (!(await this.deps.images.updateFields(id, 'uploading', {}, ended, { expectProperty: { name: UPLOAD_NODE, value: this.deps.nodeId } })))
        return await this.lost(id);
      await notifyImage(this.deps, 'image.update', id);
    } catch (err) {
      if (controller.signal.aborted || (await isDeleted(this.deps, id))) throw gazeError('IMAGE_NOT_FOUND', id);
      await this.staging.remove(id).catch(() => {});
      // Only while this stage still holds the image (another node may have recovered it, and a new stage begun).
      const reset = () =>
        this.deps.images.updateFields(id, 'uploading', resetToQueued(), {}, { expectProperty: { name: UPLOAD_NODE, value: this.deps.nodeId } });
      if (await this.uploads.putBack(id, reset, this.deps.log)) await notifyImage(this.deps, 'image.update', id);
      if (isGazeError(err)) throw err;
      if (err instanceof IngestAborted) throw gazeError('BAD_REQUEST', 'The upload was cut off before all image data arrived.');
      if (err instanceof StoreError) throw storeWriteRefusal(err);
      throw err;
    }
  }

  /**
   * The image left `uploading` under a finished stage: taken by an import (the stage did its part), or
   * deleted (Glance's stage then answers its 404 for an image it cannot find, where an upload says 410).
   */
  private async lost(id: string): Promise<void> {
    const now = await this.deps.images.get(id);
    if (now && (now.status === 'importing' || now.status === 'active')) return;
    await this.staging.remove(id).catch(() => {});
    throw gazeError('IMAGE_NOT_FOUND', id);
  }
}
