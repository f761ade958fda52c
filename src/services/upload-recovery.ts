import { resetToQueued, stageEnded, UPLOAD_NODE } from '../domain/image.ts';
import { scrubLocation } from '../ingest/store-data.ts';
import { isGazeError } from '../domain/errors.ts';
import type { ClaimWrite } from '../quota/quotas.ts';
import type { StagingArea } from '../import/staging-area.ts';
import type { ServiceDeps } from './deps.ts';
import type { Store } from '../stores/store.ts';

// A temp file unchanged for this long belongs to no running write (another worker's writes touch theirs).
export const LIVE_WRITE_MS = 60_000;

/** Tells which upload writers (node names) are known to be gone (services/node-liveness.ts). */
export interface WriterLiveness {
  goneAmong(names: string[], probeProcesses: boolean): Promise<Set<string>>;
}

/**
 * After a crash or kill: uploads and stages that were streaming are gone, so their images go back to
 * `queued` (never stuck in `saving`/`uploading`), and half-written files are removed (orphaned staged
 * files are the import runner's periodic sweep, queued data the scrubber's). An upload or a stage names
 * its writer on the image: only a writer known to be gone (a dead process of this host, or a node that
 * stopped renewing its row) is recovered here, so a node's start never ends another node's live upload,
 * whatever the store. Images written since before writers were named fall back to the stores' own signs
 * of a write in progress.
 */
export async function recoverInterruptedUploads(deps: ServiceDeps, staging: StagingArea, selfUrl: string | null, liveness: WriterLiveness): Promise<void> {
  await revertUploadsOfGoneWriters(deps, staging, selfUrl, liveness, true);
  for (const store of [...deps.stores.all(), staging.store]) await store.sweepPartials(LIVE_WRITE_MS);
}

/**
 * The same, while the node runs: the uploads and stages of writers gone since (on any host: a node
 * whose host died for good never comes back to recover its own). Only named writers are judged.
 */
export async function recoverAbandonedUploads(deps: ServiceDeps, staging: StagingArea, selfUrl: string | null, liveness: WriterLiveness): Promise<void> {
  await revertUploadsOfGoneWriters(deps, staging, selfUrl, liveness, false);
}

async function revertUploadsOfGoneWriters(
  deps: ServiceDeps,
  staging: StagingArea,
  selfUrl: string | null,
  liveness: WriterLiveness,
  /** At a node's start: this host's dead processes are probed, and writes that name no writer judged by the stores. */
  atStart: boolean,
): Promise<void> {
  const { images, stores } = deps;
  const writes = await images.writesInStatuses(['saving', 'uploading']);
  const saving = writes.filter((write) => write.status === 'saving');
  const uploading = writes.filter((write) => write.status === 'uploading');
  const gone = await liveness.goneAmong(
    [...saving, ...uploading].flatMap(({ writer }) => (writer ? [writer] : [])),
    atStart,
  );
  const writerGone = async (writer: string | null, unnamedWriteLive: () => Promise<boolean>) =>
    writer ? gone.has(writer) : atStart && !(await unnamedWriteLive());
  // Only while the same writer holds it: another node may have recovered the image, and a new upload
  // begun, since the list was read.
  const sameWriter = (writer: string | null) => (writer ? { name: UPLOAD_NODE, value: writer } : undefined);

  for (const { id, writer } of saving) {
    if (!(await writerGone(writer, () => writeInProgress(stores.all(), id)))) continue;
    if (!(await images.updateFields(id, 'saving', resetToQueued(), {}, { expectProperty: sameWriter(writer) }))) continue;
    deps.log.warn({ image: id }, `an upload cut off by the end of its process (${writer ?? 'unnamed'}): image ${id} is queued again`);
    // Whatever the interrupted upload had already put in place goes.
    for (const location of await images.locationsOf(id)) {
      await images.discardLocation(location.id);
      await scrubLocation(deps, location);
    }
  }
  for (const { id, writer, stageHost, owner } of uploading) {
    if (stageHost && stageHost !== selfUrl) continue; // staged on another node: its data is there
    if (!(await writerGone(writer, () => staging.writeInProgress(id, LIVE_WRITE_MS)))) continue;
    // Data staged in full waits for its import; a staging store that cannot answer now leaves the image
    // as it is (the next pass looks again).
    const staged = await staging.size(id).catch(() => undefined);
    // Whole data whose writer died before it could end the stage: it is ended here, as the stage would
    // have (its size, the node that holds local staging), and held against the quotas as the stage would
    // have held it: data that does not fit goes, as the stage would have refused it.
    if (typeof staged === 'number' && writer) {
      const end: ClaimWrite = (within) =>
        images.updateFields(id, 'uploading', { size: staged, reserved_bytes: null, staged_bytes: null }, stageEnded(staging.shared ? null : selfUrl), {
          expectProperty: sameWriter(writer),
          within,
        });
      const over = await deps.quotas.holdWith(owner, id, end, { staged }).then(
        () => false,
        (err: unknown) => {
          if (isGazeError(err) && err.code === 'OVER_LIMIT') return true;
          // The limits cannot be read now (Keystone away): the next pass looks again.
          deps.log.warn(
            { image: id, err },
            `a stage cut off by the end of its process (${writer}) could not be held against the quotas; left for the next pass`,
          );
          return false;
        },
      );
      if (over && (await images.updateFields(id, 'uploading', resetToQueued(), {}, { expectProperty: sameWriter(writer) }))) {
        await staging.remove(id);
        deps.log.warn(
          { image: id },
          `a stage cut off by the end of its process (${writer}) wrote ${staged} bytes the project's quota has no room for: they are removed and image ${id} is queued again`,
        );
      }
      continue;
    }
    if (staged !== null) continue;
    if (await images.updateFields(id, 'uploading', resetToQueued(), {}, { expectProperty: sameWriter(writer) })) {
      deps.log.warn({ image: id }, `a stage cut off by the end of its process (${writer ?? 'unnamed'}): image ${id} is queued again`);
    }
  }
}

/**
 * Unfinished parts that writes killed mid-way left in object stores (S3 multipart uploads): an image
 * being written, staged, imported or copied, by any node, keeps its own, and so does a write begun less
 * than `minAgeMs` ago and a write of a key that is no image of this service's. Run with the data
 * scrubber (see orphanSweepEvery), on the image stores and the staging store.
 */
export async function sweepOrphanedParts(
  deps: Pick<ServiceDeps, 'images' | 'tasks' | 'log'>,
  stores: Store[],
  staging: Pick<StagingArea, 'imageOf'>,
  minAgeMs = LIVE_WRITE_MS,
): Promise<void> {
  const { images } = deps;
  const writing = new Set([
    ...(await images.idsInStatus('saving')),
    ...(await images.idsInStatus('uploading')),
    ...(await images.idsInStatus('importing')),
    ...(await deps.tasks.unfinishedImageIds()),
  ]);
  // A key that is no image of this service's is another's write (a Glance sharing the bucket).
  const keep = async (key: string) => {
    const id = staging.imageOf(key);
    return writing.has(id) || !(await images.idExists(id));
  };
  for (const store of new Set(stores)) {
    const aborted = await store.sweepOrphans(keep, minAgeMs);
    if (aborted) deps.log.info(`store ${store.id}: removed ${aborted} unfinished upload(s) of writes that died`);
  }
}

async function writeInProgress(stores: Store[], id: string): Promise<boolean> {
  const live = await Promise.all(stores.map((store) => store.writeInProgress(id, LIVE_WRITE_MS)));
  return live.some(Boolean);
}

/** Runs `sweep` on the first call and then at most once per `intervalMs` (listing a Swift segment container is not free). */
export function orphanSweepEvery(intervalMs: number, sweep: () => Promise<void>): () => Promise<void> {
  let last = -Infinity;
  return async () => {
    if (Date.now() - last < intervalMs) return;
    last = Date.now();
    await sweep();
  };
}
