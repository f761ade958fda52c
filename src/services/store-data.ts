import type { Readable } from 'node:stream';
import type { Image, ImageStatus } from '../domain/image.ts';
import type { Store } from '../stores/store.ts';
import { ingest } from '../ingest/pipeline.ts';
import type { ServiceDeps } from './deps.ts';

/** The data's digest differs from the one given when the image was created; nothing was kept. */
export class DigestMismatch extends Error {
  constructor(readonly algo: string, readonly actual: string, readonly expected: string) {
    super(`${algo} of the data is ${actual}, not the expected ${expected}`);
    this.name = 'DigestMismatch';
  }
}

/** The image left `from` (deleted, most likely) while its data was written; the data was removed. */
export class ImageGone extends Error {
  constructor(readonly imageId: string) {
    super(`image ${imageId} is gone`);
    this.name = 'ImageGone';
  }
}

/**
 * Writes an image's data into a store through the ingest pipeline and makes the image active with it:
 * the one step shared by upload, import and the legacy import task. Checks an expected digest first;
 * on any refusal the written data is removed again.
 */
export async function storeAndActivate(deps: ServiceDeps, image: Image, source: Readable, store: Store,
  from: ImageStatus, signal: AbortSignal, sizeHint?: number): Promise<void> {
  const result = await ingest({
    source, key: image.id, store, sizeCap: deps.settings.imageSizeCap, hashAlgo: deps.settings.hashingAlgorithm,
    claimedDiskFormat: image.disk_format, signal, sizeHint,
  });
  const digests = result.digests!;
  if (image.os_hash_value && image.os_hash_value !== digests.hashValue) {
    await store.delete(result.location.url).catch(() => {});
    throw new DigestMismatch(digests.hashAlgo, digests.hashValue, image.os_hash_value);
  }
  const activated = await deps.images.activateWithData(image.id, {
    size: result.size, checksum: digests.checksum, os_hash_algo: digests.hashAlgo, os_hash_value: digests.hashValue,
    virtual_size: image.container_format === 'bare' ? result.inspection.virtualSize : null,
  }, { url: result.location.url, metadata: deps.stores.multistore ? { store: store.id } : {} }, from);
  if (!activated) {
    await store.delete(result.location.url).catch(() => {});
    throw new ImageGone(image.id);
  }
}
