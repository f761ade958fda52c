import type { Readable } from 'node:stream';
import type { Image, ImageStatus } from '../domain/image.ts';
import type { Store } from '../stores/store.ts';
import { ingest, type Digests, type FormatCheck } from '../ingest/pipeline.ts';
import type { ServiceDeps } from './deps.ts';
import type { ByteBudget } from '../quota/quotas.ts';

/** The data's digest differs from the one given when the image was created; nothing was kept. */
export class DigestMismatch extends Error {
  constructor(readonly algo: string, readonly actual: string, readonly expected: string) {
    super(`${algo} of the data is ${actual}, not the expected ${expected}`);
    this.name = 'DigestMismatch';
  }
}

/** A digest the data must have: md5 (`checksum`) or the service's `hashing_algorithm`. */
export interface ExpectedDigest { algo: 'md5' | 'hash'; value: string }

/** The mismatch between stored data's digests and each expectation given, or null when all hold. */
export function digestMismatch(digests: Digests, ...expected: Array<ExpectedDigest | null>): DigestMismatch | null {
  for (const e of expected) {
    if (e?.algo === 'md5' && e.value !== digests.checksum) return new DigestMismatch('md5', digests.checksum, e.value);
    if (e?.algo === 'hash' && e.value !== digests.hashValue) return new DigestMismatch(digests.hashAlgo, digests.hashValue, e.value);
  }
  return null;
}

/** The digest given when the image was created, if any. */
export function expectedAtCreate(image: Image): ExpectedDigest | null {
  return image.os_hash_value ? { algo: 'hash', value: image.os_hash_value } : null;
}

/** How a store write judges an image's data: only container_format bare is inspected (spec §2.2). */
export function formatCheckFor(image: Image, deps: ServiceDeps): FormatCheck | null {
  return image.container_format === 'bare' ? { diskFormat: image.disk_format, policy: deps.settings.formatPolicy } : null;
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
  from: ImageStatus, signal: AbortSignal, sizeHint?: number, budget?: ByteBudget | null): Promise<void> {
  const result = await ingest({
    source, key: image.id, store, sizeCap: deps.settings.imageSizeCap, hashAlgo: deps.settings.hashingAlgorithm,
    formatCheck: formatCheckFor(image, deps), signal, sizeHint, budget,
  });
  const digests = result.digests!;
  const mismatch = digestMismatch(digests, expectedAtCreate(image));
  if (mismatch) {
    await store.delete(result.location.url).catch(() => {});
    throw mismatch;
  }
  if (budget) {
    // Writes that ran side by side were each checked against the same remaining quota: reserve what
    // was written, then check again with everyone else's reservations counted.
    await deps.images.updateFields(image.id, from, { reserved_bytes: result.size });
    const now = await deps.quotas.storeBudget(image.owner, image.id);
    if (now && result.size > now.bytes) {
      await store.delete(result.location.url).catch(() => {});
      throw now.exceeded(result.size);
    }
  }
  const activated = await deps.images.activateWithData(image.id, {
    size: result.size, checksum: digests.checksum, os_hash_algo: digests.hashAlgo, os_hash_value: digests.hashValue,
    virtual_size: result.inspection?.virtualSize ?? null, reserved_bytes: null,
  }, { url: result.location.url, metadata: deps.stores.multistore ? { store: store.id } : {} }, from);
  if (!activated) {
    await store.delete(result.location.url).catch(() => {});
    throw new ImageGone(image.id);
  }
}
