import type { Readable } from 'node:stream';
import type { Image, ImageLocation, ImageStatus } from '../domain/image.ts';
import type { Store } from '../stores/store.ts';
import { acceptFormat, ingest, translateIngestError, type Digests, type FormatCheck, type IngestRequest, type IngestResult } from './pipeline.ts';
import { checkAgain, type ByteBudget, type QuotaService } from '../quota/quotas.ts';
import type { ImagesRepo } from '../db/repos/images.ts';
import type { StoreRegistry } from '../stores/registry.ts';
import type { FormatReport } from '../formats/types.ts';
import type { Logger } from '../util/logger.ts';
import type { FormatPolicy } from '../formats/verdict.ts';
import { gazeError } from '../domain/errors.ts';
import { activation } from '../domain/image.ts';

// Writing an image's data into a store and making it visible: shared by uploads (services) and the
// import engine, below both.

/** What writing image data needs: the image rows, the stores, the limits and the log. */
export interface DataDeps {
  images: ImagesRepo;
  stores: StoreRegistry;
  quotas: QuotaService;
  settings: { imageSizeCap: number; hashingAlgorithm: string; formatPolicy: FormatPolicy };
  log: Logger;
}

/**
 * What was learnt about staged data while it was written: its digests and what the format inspectors
 * found. An import whose plugins left the file alone uses them instead of reading the bytes again.
 */
export interface StagedFacts {
  size: number;
  digests: Digests;
  report: FormatReport;
  /** The staged file these facts describe: any rewrite of it (a plugin's) makes them stale. */
  file: { ino: number; mtimeMs: number };
}

/** Data put into a store, and the location row that records it there. */
export interface Located {
  result: IngestResult;
  location: ImageLocation;
}

/** The data's digest differs from the one given when the image was created; nothing was kept. */
export class DigestMismatch extends Error {
  constructor(
    readonly algo: string,
    readonly actual: string,
    readonly expected: string,
  ) {
    super(`${algo} of the data is ${actual}, not the expected ${expected}`);
    this.name = 'DigestMismatch';
  }
}

/** A digest the data must have: md5 (`checksum`) or the service's `hashing_algorithm`. */
export interface ExpectedDigest {
  algo: 'md5' | 'hash';
  value: string;
}

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
export function formatCheckFor(image: Image, deps: DataDeps): FormatCheck | null {
  return image.container_format === 'bare' ? { diskFormat: image.disk_format, policy: deps.settings.formatPolicy } : null;
}

/**
 * Writes an image's data into a store through the ingest pipeline, under a location reserved before
 * the first byte (ImagesRepo.reserveLocation) while the image is in one of `statuses`. The location is
 * returned still `pending`: the caller makes it visible, or calls scrubLocation. Any failure here
 * removes what was written, and its row.
 */
export async function writeData(
  deps: DataDeps,
  image: Image,
  store: Store,
  statuses: readonly ImageStatus[],
  req: Omit<IngestRequest, 'key' | 'store'>,
): Promise<Located> {
  const written = await intoNewLocation(deps, image, store, statuses, req.sizeHint ?? 0, (at) => ingest({ ...req, key: image.id, store, at }), req.source);
  for (const warning of written.result.warnings) deps.log.warn({ image: image.id }, warning);
  return written;
}

/**
 * writeData() without moving the bytes: a staged file whose digests and inspection are known becomes
 * the store's object where the store can take it as it is (a hard link on the same filesystem). The
 * known facts are judged as ingest() would judge the bytes. Null when the store cannot take the file.
 */
export async function adoptData(
  deps: DataDeps,
  image: Image,
  store: Store,
  statuses: readonly ImageStatus[],
  file: string,
  facts: StagedFacts,
): Promise<Located | null> {
  if (facts.size > deps.settings.imageSizeCap) throw gazeError('IMAGE_TOO_LARGE');
  const check = formatCheckFor(image, deps);
  const accepted = check && acceptFormat(facts.report, check);
  for (const warning of accepted ? accepted.warnings : []) deps.log.warn({ image: image.id }, warning);
  const { result, location } = await intoNewLocation(deps, image, store, statuses, facts.size, async (at): Promise<IngestResult | null> => {
    const adopted = await store.adopt(image.id, file, at);
    if (!adopted) return null;
    const stored = { storeId: store.id, url: adopted.url };
    return {
      size: adopted.size,
      digests: facts.digests,
      inspection: accepted ? accepted.inspection : null,
      report: facts.report,
      location: stored,
      warnings: [],
    };
  });
  return result && { result, location };
}

/**
 * Reserves the image's location in `store` (for `size` bytes, where the store has several places) and
 * has `put` put the data at its url. When `put` fails, what it put is removed, and the row; when it puts
 * nothing (null), the row goes. A refused reservation ends the `source` that would have been read.
 */
async function intoNewLocation<R extends IngestResult | null>(
  deps: DataDeps,
  image: Image,
  store: Store,
  statuses: readonly ImageStatus[],
  size: number,
  put: (at: string) => Promise<R>,
  source?: Readable,
): Promise<{ result: R; location: ImageLocation }> {
  const location = await (async () => {
    try {
      const url = store.urlFor(image.id, size);
      return await deps.images.reserveLocation(image.id, url, store.locationMetadata(url, deps.stores.multistore), statuses);
    } catch (err) {
      source?.destroy();
      throw translateIngestError(err);
    }
  })();
  try {
    const result = await put(location.url);
    if (result === null) await deps.images.purgeLocation(location.id);
    return { result, location };
  } catch (err) {
    await scrubLocation(deps, location, store, { whilePending: true });
    throw translateIngestError(err);
  }
}

/**
 * The other locations, of any image, that hold data or may hold it again and name the object `url`
 * names in `store` (the same url, or another spelling of it).
 */
export async function locationsSharing(
  deps: Pick<DataDeps, 'images' | 'stores'>,
  store: Store,
  url: string,
  exceptLocationId?: string,
): Promise<Array<ImageLocation & { imageId: string }>> {
  const candidates = await deps.images.locationsEndingAs(url);
  return candidates.filter((l) => l.id !== exceptLocationId && deps.stores.forLocation(l) === store && store.sameObject(l.url, url));
}

/**
 * Removes a location's data from its store and then its row. A store that cannot remove it now (down,
 * read-only) leaves the row queued as pending_delete, for the scrubber to try again: data is never
 * forgotten. Data on a store this service never writes to (http) is not its to remove: only the row goes;
 * nor is data another location still names (of this image or another: the same url written again after
 * a failed removal, a location added back, a delayed delete that may be restored): only the row goes.
 * `whilePending`: a writer's cleanup of the row it reserved, which a successor that reused the row
 * (the same url) may have made active since: then nothing is removed (`not-ours`).
 * `purged-elsewhere`: another scrubber (another node, `gaze scrub`) removed the row meanwhile.
 */
export async function scrubLocation(
  deps: Pick<DataDeps, 'images' | 'stores' | 'log'>,
  location: ImageLocation,
  store = deps.stores.forLocation(location),
  opts: { whilePending?: boolean } = {},
): Promise<'removed' | 'kept' | 'purged-elsewhere' | 'not-ours'> {
  // Queued for removal by a delete meanwhile, or purged with its data by a scrubber (this write may have
  // put the data back since): still this writer's to remove. Active: its successor's.
  if (opts.whilePending && !(await deps.images.discardLocation(location.id, ['pending', 'pending_delete']))) {
    if ((await deps.images.locationStatus(location.id)) !== null) return 'not-ours';
  }
  try {
    if (!store) throw new Error('its store is not configured on this node');
    if (store.ownsData && (await locationsSharing(deps, store, location.url, location.id)).length === 0) await store.delete(location.url);
    return (await deps.images.purgeLocation(location.id)) ? 'removed' : 'purged-elsewhere';
  } catch (err) {
    // A scrubber that raced this one may have removed the data and its row meanwhile: nothing is kept.
    if (!(await deps.images.discardLocation(location.id).catch(() => true))) return 'purged-elsewhere';
    deps.log.error({ err }, `could not remove image data at ${location.url} (kept for a later retry)`);
    return 'kept';
  }
}

/**
 * Writes an image's data into a store and makes the image active with it: the one step shared by
 * upload and the legacy import task. Checks an expected digest first; on any refusal the written data
 * is removed again.
 */
export async function storeAndActivate(
  deps: DataDeps,
  image: Image,
  source: Readable,
  store: Store,
  from: ImageStatus,
  signal: AbortSignal,
  sizeHint?: number,
  budget?: ByteBudget | null,
): Promise<void> {
  const heldBefore = await deps.quotas.holdAnnounced(image.owner, image.id, from, budget, sizeHint, 'stored');
  const { result, location } = await writeData(deps, image, store, [from], {
    source,
    sizeCap: deps.settings.imageSizeCap,
    hashAlgo: deps.settings.hashingAlgorithm,
    formatCheck: formatCheckFor(image, deps),
    signal,
    sizeHint,
    budget,
  });
  try {
    const digests = result.digests!;
    const mismatch = digestMismatch(digests, expectedAtCreate(image));
    if (mismatch) throw mismatch;
    if (checkAgain(budget, heldBefore, result.size)) {
      await deps.quotas.hold(image.owner, image.id, [from], { reserved_bytes: result.size }, { stored: result.size });
    }
    await deps.images.activateWithData(
      image.id,
      activation({
        size: result.size,
        checksum: digests.checksum,
        hashAlgo: digests.hashAlgo,
        hashValue: digests.hashValue,
        virtualSize: result.inspection?.virtualSize ?? null,
      }),
      location.id,
      from,
    );
  } catch (err) {
    await scrubLocation(deps, location, store, { whilePending: true });
    throw err;
  }
}
