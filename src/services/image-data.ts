import type { Readable } from 'node:stream';
import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import { resetToQueued, assertFormatsForData, assertTransition, ImageGone, UPLOAD_NODE, type Image } from '../domain/image.ts';
import { gazeError, isGazeError } from '../domain/errors.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage, refuseUnlessOwner, findVisibleImage } from './access.ts';
import { claimForWrite, isDeleted, type UploadRegistry } from './uploads.ts';
import type { ByteBudget } from '../quota/quotas.ts';
import type { Store } from '../stores/store.ts';
import type { ImageCacheService } from './image-cache.ts';
import { IngestAborted, storeWriteRefusal } from '../ingest/pipeline.ts';
import { DigestMismatch, storeAndActivate } from '../ingest/store-data.ts';
import type { ByteRange } from '../stores/driver.ts';
import { StoreError } from '../stores/driver.ts';
import { imageDataPayload, imagePayload, imageSendPayload } from '../notify/payloads.ts';
import { notifyImage } from '../notify/image-events.ts';

export interface Download {
  image: Image;
  /** Absent when the image has no data (204). */
  stream?: Readable;
  range?: ByteRange;
  /** To call once the stream's last byte went out to the client: Glance's image.send. */
  delivered?: () => void;
}

export class ImageDataService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly uploads: UploadRegistry,
    /** The node's image cache, when downloads go through it. */
    private readonly cache?: Pick<ImageCacheService, 'cachedData' | 'passThrough'>,
  ) {}

  /** PUT /v2/images/{id}/file. The caller has checked the content type. */
  async upload(ctx: RequestContext, id: string, source: Readable, storeId?: string, sizeHint?: number): Promise<void> {
    refuseReadOnlyCaller(ctx);
    // An X-Image-Meta-Store that is there but empty names no store (Glance: 400), rather than the default.
    const store = storeId !== undefined && this.deps.stores.multistore ? this.deps.stores.get(storeId) : this.deps.stores.default();
    if (!store) throw gazeError('STORE_UNKNOWN', storeId!);
    const image = await findVisibleImage(this.deps, ctx, id);
    await authorizeOnImage(this.deps, ctx, 'upload_image', image, () => gazeError('UPLOAD_NOT_ALLOWED', id));
    assertTransition(image.status, 'saving');
    refuseUnlessOwner(ctx, image, () => gazeError('UPLOAD_NOT_ALLOWED', id));
    assertFormatsForData(image);
    const budget = await this.deps.quotas.admitWrite(image.owner, id, 'store', sizeHint);
    await this.uploads.writing(id, (controller) => this.write(id, image.owner, source, store, controller, sizeHint, budget));
  }

  private async write(
    id: string,
    owner: string | null,
    source: Readable,
    store: Store,
    controller: AbortController,
    sizeHint: number | undefined,
    budget: ByteBudget | null,
  ): Promise<void> {
    if (!(await claimForWrite(this.deps, owner, id, 'saving'))) {
      const now = await this.deps.images.get(id);
      if (!now) throw gazeError('DELETED_DURING_UPLOAD', id);
      throw gazeError('STATUS_TRANSITION', now.status, 'saving');
    }
    // From the claim on, any failure (the database's too) puts the image back: never left saving.
    try {
      // Read again: a PATCH could change the formats until the image left queued; now they are fixed,
      // and the data is judged by these.
      const saving = await this.deps.images.get(id);
      if (!saving) throw new ImageGone(id);
      // Glance's order: the save to saving, then the data's events, then the save of the result.
      this.deps.notifier.info('image.update', imagePayload(saving));
      this.deps.notifier.info('image.prepare', imageDataPayload(saving, this.deps.stores.multistore ? store.id : undefined));
      await storeAndActivate(this.deps, saving, source, store, 'saving', controller.signal, sizeHint, budget);
      const done = await this.deps.images.get(id);
      if (done) {
        this.deps.notifier.info('image.upload', imageDataPayload(done));
        this.deps.notifier.info('image.activate', imagePayload(done));
        this.deps.notifier.info('image.update', imagePayload(done));
      }
    } catch (err) {
      if (err instanceof ImageGone || controller.signal.aborted || (await isDeleted(this.deps, id))) throw gazeError('DELETED_DURING_UPLOAD', id);
      // Any failure while the bytes flowed puts the image back to queued with no data (never killed).
      // Only while this upload still holds the image; an expected digest stays expected.
      const reset = () => this.deps.images.updateFields(id, 'saving', resetToQueued(), {}, { expectProperty: { name: UPLOAD_NODE, value: this.deps.nodeId } });
      const queued = await this.uploads.putBack(id, reset, this.deps.log);
      this.deps.notifier.error('image.upload', err instanceof Error ? err.message : String(err));
      // As Glance's restore: the image back to queued is an update too.
      if (queued) await notifyImage(this.deps, 'image.update', id);
      if (err instanceof DigestMismatch) throw gazeError('CHECKSUM_MISMATCH', 'os_hash_value');
      if (isGazeError(err)) throw err;
      if (err instanceof IngestAborted) throw gazeError('BAD_REQUEST', 'The upload was cut off before all image data arrived.');
      if (err instanceof StoreError) throw storeWriteRefusal(err);
      throw err;
    }
  }

  /**
   * GET /v2/images/{id}/file, with the Range (or legacy Content-Range) header the client sent: read once
   * the image is found and may be read, as Glance's serializer does.
   */
  async download(ctx: RequestContext, id: string, headers: { range?: string; contentRange?: string } = {}): Promise<Download> {
    const image = await findVisibleImage(this.deps, ctx, id);
    if (image.status === 'deactivated' && !ctx.isAdmin) throw gazeError('DOWNLOAD_DEACTIVATED');
    await authorizeOnImage(this.deps, ctx, 'download_image', image);
    // An unreadable header is refused even for an image without data, as Glance's serializer reads it first.
    const range = headers.range ? parseRangeHeader(headers.range) : headers.contentRange ? parseContentRangeHeader(headers.contentRange) : null;
    if (image.locations.length === 0 || image.size === null) return { image };
    const byteRange = range ? resolveRange(range, image.size) : undefined;
    const length = byteRange ? byteRange.end - byteRange.start + 1 : image.size;
    const delivered = () => this.deps.notifier.info('image.send', imageSendPayload(image, length, ctx));
    const cached = await this.cache?.cachedData(image, byteRange, length);
    if (cached) return { image, stream: cached, range: byteRange, delivered };
    const stream = await this.deps.stores.openFirst(image.locations, {
      range: byteRange,
      size: image.size,
      failed: (url, err) => this.deps.log.error({ err, image: id }, `cannot read ${url}; trying the next location`),
    });
    if (stream) return { image, stream: byteRange || !this.cache ? stream : this.cache.passThrough(image, stream), range: byteRange, delivered };
    throw gazeError('DATA_UNAVAILABLE', id);
  }
}

/** A single range as the client sent it: `start-end`, `start-` or `-suffix`, or the legacy Content-Range (`total`: its length, null for `*`). */
type RangeRequest = { start: number; end: number | null } | { suffix: number } | { start: number; end: number; total: number | null };

function parseRangeHeader(header: string): RangeRequest {
  if (header.includes(',')) throw gazeError('RANGE_MULTIPLE');
  // WebOb's pattern, matched from the start only: `Bytes=-5-10` is the last 5 bytes in Glance.
  const m = /^bytes *= *(\d*) *- *(\d*)/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) throw gazeError('RANGE_INVALID');
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  const end = m[2] === '' ? null : Number(m[2]);
  if (end !== null && end < start) throw gazeError('RANGE_INVALID');
  return { start, end };
}

/** The legacy request header `Content-Range: bytes a-b/*` that Glance also honours. */
function parseContentRangeHeader(header: string): RangeRequest {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)/.exec(header);
  const total = m?.[3] === '*' ? null : Number(m?.[3]);
  // WebOb's ContentRange: the end not before the start, and inside the length when one is given.
  if (!m || Number(m[2]) < Number(m[1]) || (total !== null && Number(m[2]) >= total)) throw gazeError('CONTENT_RANGE_INVALID');
  return { start: Number(m[1]), end: Number(m[2]), total };
}

function resolveRange(range: RangeRequest, size: number): ByteRange {
  if ('suffix' in range) {
    if (size === 0) throw gazeError('RANGE_INVALID');
    // WebOb reads `-0` as a start of 0: the whole image, as Glance serves it.
    return { start: range.suffix === 0 ? 0 : Math.max(0, size - range.suffix), end: size - 1 };
  }
  if ('total' in range) {
    // Glance's own checks of the legacy header, in its order.
    if (range.total === null && range.end + 1 > size) throw gazeError('CONTENT_RANGE_STOP_INVALID', size);
    if (range.start >= size) throw gazeError('CONTENT_RANGE_START_INVALID', size);
  }
  if (range.start >= size) throw gazeError('RANGE_START_INVALID', size);
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}
