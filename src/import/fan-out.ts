import type { Image, ImageStatus } from '../domain/image.ts';
import { activation, ImageGone } from '../domain/image.ts';
import { IMPORTING_TO_STORES, storeProgress } from '../domain/import-progress.ts';
import type { Digests } from '../ingest/pipeline.ts';
import { adoptData, digestMismatch, expectedAtCreate, formatCheckFor, scrubLocation, writeData, type ExpectedDigest } from '../ingest/store-data.ts';
import { notifyImage } from '../notify/image-events.ts';
import { imageDataPayload, imagePayload } from '../notify/payloads.ts';
import type { Store } from '../stores/store.ts';
import { HandedOn, IMAGE_DELETED, ImportStopped } from './failures.ts';
import { saveInput, type ImportJob } from './job.ts';

const PROGRESS_MS = 2000;

interface StoredData {
  size: number;
  digests: Digests;
  virtualSize: number | null;
}

/**
 * One source, many stores: every target store gets the staged bytes, one after the other, through the
 * ingest pipeline (or as the staged file itself where the store can adopt it). Each store's outcome is
 * recorded on the image as it happens. With all_stores_must_succeed (the default) the first failure
 * ends the import and the image turns active with the last store; without it, the image is active
 * after the first store and the failures are listed. A copy leaves the image's status alone.
 */
export async function fanOut(
  job: ImportJob,
  image: Image,
  targets: Store[],
  opts: { copying: boolean; expected: ExpectedDigest | null; stagedSize: number },
): Promise<void> {
  const { deps } = job;
  const mustAll = job.input.import_req.all_stores_must_succeed !== false;
  // Data lands while the image imports; with all_stores_must_succeed off it is active after the first
  // store, and a copy only ever writes to an active image.
  const writableIn: ImageStatus[] = opts.copying ? ['active'] : mustAll ? ['importing'] : ['importing', 'active'];
  let stored: StoredData | null = null;
  let lastError: unknown = null;
  // The import holds the image's lock: nobody else writes these properties meanwhile.
  let properties = image.properties;
  // Once the image is active (a copy, or an import after its first store), it holds against the quotas
  // only what the stores still to write will hold: the stores written count by their locations.
  const heldAfter = (index: number) => {
    const left = targets.length - index - 1;
    return left > 0 ? opts.stagedSize * left : null;
  };
  const holdForStoresAfter = (index: number) => deps.images.updateFields(image.id, 'active', { reserved_bytes: heldAfter(index) });
  const record = async (change: Parameters<typeof storeProgress>[1], activateWith?: StoredData, stillReserved: number | null = null) => {
    const progress = storeProgress(properties, change);
    if (activateWith) await activate(job, image.id, activateWith, progress, stillReserved);
    else await deps.images.setProperties(image.id, progress);
    properties = { ...properties, ...progress };
  };
  for (const [index, store] of targets.entries()) {
    const backend = deps.stores.multistore ? store.id : undefined;
    deps.notifier.info('image.prepare', imageDataPayload({ ...image, properties }, backend));
    try {
      const first = stored === null;
      stored = await writeToStore(job, image, store, writableIn, opts);
      const activates = !opts.copying && (mustAll ? index === targets.length - 1 : first);
      const importingBefore = properties[IMPORTING_TO_STORES] ?? '';
      await record({ done: store.id }, activates ? stored : undefined, heldAfter(index));
      if (!activates) await holdForStoresAfter(index);
      await announceStored(job, image.id, importingBefore, activates);
    } catch (err) {
      // The store being written is listed as failed whatever stopped the import (a cancel, the image
      // moved on, this store's own failure), unless another process took the import over or the image
      // was deleted (a write to its rows then only contends with the delete's). A single store is no
      // store by name (Glance's None), listed nowhere.
      const deleted = err instanceof ImageGone || (job.signal.reason as Error | undefined)?.message === IMAGE_DELETED;
      if (backend !== undefined && !(err instanceof HandedOn) && !deleted) await record({ failed: [store.id] }).catch(() => {});
      const failure = await storeFailure(job, image.id, store, writableIn, err);
      await holdForStoresAfter(index);
      await notifyImage(deps, 'image.update', image.id);
      if (mustAll) throw failure;
      lastError = failure;
    }
  }
  if (stored) return;
  // Glance's import ends by checking the image is active: a copy that wrote nowhere (no store given, or
  // each failed with all_stores_must_succeed off) still ends well while its image stays active.
  if (opts.copying && (await deps.images.get(image.id))?.status === 'active') return;
  throw lastError ?? new ImportStopped('None of the uploads finished!');
}

/**
 * One store's copy of the staged data, made visible: written (or adopted as the staged file itself),
 * its digests checked, and its location activated while this process still holds the task's lease.
 * Whatever fails after the write removes what was written.
 */
async function writeToStore(
  job: ImportJob,
  image: Image,
  store: Store,
  writableIn: ImageStatus[],
  opts: { copying: boolean; expected: ExpectedDigest | null; stagedSize: number },
): Promise<StoredData> {
  const { deps, staging, task, signal } = job;
  const report = (copied: number) => deps.tasks.setMessage(task.id, `Copied ${Math.floor(copied / 1048576)} MiB`);
  // Staged bytes that nothing rewrote are already digested and inspected: a store that can take
  // the file as it is (a file store on the same filesystem) gets it without a copy.
  const facts = await staging.facts(image.id);
  const { result, location } =
    (facts && (await adoptData(deps, image, store, writableIn, staging.path(image.id), facts))) ||
    (await writeData(deps, image, store, writableIn, {
      source: await staging.read(image.id),
      onBytes: throttled(PROGRESS_MS, report),
      sizeCap: deps.settings.imageSizeCap,
      hashAlgo: deps.settings.hashingAlgorithm,
      formatCheck: formatCheckFor(image, deps),
      signal,
      sizeHint: opts.stagedSize,
    }));
  const digests = result.digests!;
  // A copy must be the very bytes the image has; new data must match a digest given at create,
  // and glance-download's data the remote image's digest.
  const mismatch = digestMismatch(digests, opts.expected, expectedAtCreate(image));
  try {
    // Fencing: a process paused past its lease must not activate data beside its successor's.
    await job.keepLease();
    if (mismatch) throw mismatch;
    if (opts.copying && !job.input.copies?.includes(location.id)) {
      // Recorded before it is made visible: a failed copy takes back exactly these (finish.ts).
      job.input.copies = [...(job.input.copies ?? []), location.id];
      await saveInput(job);
    }
    await deps.images.activateLocation(image.id, location.id, writableIn);
  } catch (err) {
    await scrubLocation(deps, location, store, { whilePending: true });
    throw err;
  }
  // The last progress message stays on the finished task, as in Glance ("Copied 200 MiB").
  await report(result.size);
  return { size: result.size, digests, virtualSize: result.inspection?.virtualSize ?? null };
}

/** The notifications of one store's data, sent after its outcome was saved. */
async function announceStored(job: ImportJob, imageId: string, importingBefore: string, activates: boolean): Promise<void> {
  const { notifier, images } = job.deps;
  if (!notifier.sends('image.upload', 'image.activate', 'image.update')) return;
  const now = await images.get(imageId);
  if (!now) return;
  // Glance announces the data while the store is still listed as importing; its next save takes it off.
  const announced = { ...now, properties: { ...now.properties, [IMPORTING_TO_STORES]: importingBefore } };
  notifier.info('image.upload', imageDataPayload(announced));
  if (activates) notifier.info('image.activate', imagePayload(announced));
  notifier.info('image.update', imagePayload(now)); // the save of this store's outcome
}

/**
 * What one store's failure means for the import: rethrown when the whole import must stop (aborted,
 * handed on, image deleted); otherwise the error the task reports if no store succeeds.
 */
async function storeFailure(job: ImportJob, imageId: string, store: Store, writableIn: ImageStatus[], err: unknown): Promise<unknown> {
  if (job.signal.aborted || err instanceof ImportStopped || err instanceof HandedOn) throw err;
  // Deleted: no other store is worth writing. Only moved on (deactivated during a copy): this store
  // failed, and the task says what happened to the image, not that it was deleted.
  const now = err instanceof ImageGone ? await job.deps.images.get(imageId) : null;
  if (err instanceof ImageGone && !now) throw err;
  if (!now) return err;
  return writableIn.includes(now.status)
    ? new ImportStopped(`The data written to store ${store.id} was removed meanwhile; it was not kept.`)
    : new ImportStopped(`Image ${imageId} is ${now.status} now, no longer ${writableIn.join(' or ')}; its data was not kept.`);
}

/** importing → active with the stored data's fields, and the store progress, in one write. */
async function activate(job: ImportJob, imageId: string, stored: StoredData, progress: Record<string, string>, stillReserved: number | null): Promise<void> {
  const { digests } = stored;
  const fields = activation(
    {
      size: stored.size,
      checksum: digests.checksum,
      hashAlgo: digests.hashAlgo,
      hashValue: digests.hashValue,
      virtualSize: stored.virtualSize,
    },
    stillReserved,
  );
  if (!(await job.deps.images.updateFields(imageId, 'importing', fields, progress))) {
    await job.deps.images.require(imageId); // deleted meanwhile: says so
    throw new ImportStopped(`Image ${imageId} is no longer importing; its data was not activated.`);
  }
}

/** A byte-count callback that reports at most once per `everyMs` (the task message "Copied N MiB"). */
function throttled(everyMs: number, report: (copied: number) => Promise<void>): (copied: number) => void {
  let last = Date.now();
  return (copied) => {
    if (Date.now() - last < everyMs) return;
    last = Date.now();
    report(copied).catch(() => {});
  };
}
