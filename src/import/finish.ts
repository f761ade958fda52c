import { logTaskFailure } from '../util/logger.ts';
import type { TaskRow } from '../db/repos/tasks.ts';
import { IMPORT_LOCK, resetToQueued, type Image } from '../domain/image.ts';
import { FAILED_IMPORT, IMPORTING_TO_STORES, storeProgress, storesListed } from '../domain/import-progress.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { scrubLocation } from '../ingest/store-data.ts';
import { notifyImage } from '../notify/image-events.ts';
import { taskPayload } from '../notify/payloads.ts';
import type { ImportDeps } from './deps.ts';
import { previousPropertyWrites, type ImportInput } from './job.ts';
import type { StagingArea } from './staging-area.ts';

// How a task ends: success, or failure with the revert of what the import did to the image.

export interface FinishDeps {
  deps: ImportDeps;
  staging: StagingArea;
  taskTimeToLiveHours: number;
}

/** A task event with the task as it now is (Glance sends the task it has just saved). */
export async function notifyTask(deps: ImportDeps, event: string, taskId: string): Promise<void> {
  if (!deps.notifier.sends(event)) return;
  const task = await deps.tasks.getRaw(taskId);
  if (task) deps.notifier.info(event, taskPayload(task));
}

/** What every ended task gets: its expiry, and no lease. */
const ended = (f: FinishDeps) => ({ expires_at: addSeconds(nowTimestamp(), f.taskTimeToLiveHours * 3600), lease_owner: null, lease_expires_at: null });

/**
 * Ends the task, then releases the image's import lock if the task holds it: Glance's last step, in
 * that order, so that a client that sees the lock gone finds the task finished.
 */
export async function succeed(f: FinishDeps, task: TaskRow, imageId: string): Promise<void> {
  const { deps } = f;
  await deps.tasks.transition(task.id, ['processing'], {
    status: 'success',
    result: JSON.stringify({ image_id: imageId }),
    ...ended(f),
  });
  await notifyTask(deps, 'task.success', task.id);
  await deps.images.releaseImportLock(imageId, task.id);
}

/** Undoes what a failed task did to its image (each kind of task its own way); may return a sentence for the task's message. */
export type Revert = (f: FinishDeps, task: TaskRow, image: Image | null) => Promise<string | null>;

/** Fails a task after its kind's revert; the task says why (and what the revert did, where it says so). */
export async function failAndRevert(f: FinishDeps, revert: Revert | null, stale: TaskRow, message: string): Promise<void> {
  const { deps } = f;
  // The run may have added to the task's input since it was read (the values to put back).
  const task = (await deps.tasks.getRaw(stale.id)) ?? stale;
  const image = task.image_id ? await deps.images.get(task.image_id) : null;
  const said = revert ? await revert(f, task, image) : null;
  if (said) message = `${message} ${said}`;
  // Nothing more when it ended meanwhile (by a cancel, or by the process that took it over).
  await failUnfinished(f, task, message);
}

/**
 * Fails a task still pending or processing from outside its run (a cancel, a stale lock taken over), as
 * every failed task ends: announced, with its expiry, without its claim. Its run, in whichever process,
 * notices on its next beat (or before it makes data visible) and reverts what it did. False when it had
 * ended already.
 */
export async function failUnfinished(f: FinishDeps, task: TaskRow, message: string): Promise<boolean> {
  const { deps } = f;
  if (!(await deps.tasks.transition(task.id, ['pending', 'processing'], { status: 'failure', message, ...ended(f) }))) return false;
  logTaskFailure(deps.log, task.id, task.image_id, message);
  await notifyTask(deps, 'task.failure', task.id);
  return true;
}

/**
 * Fails a task that has not begun (pending), then undoes what its acceptance did (its import lock): nobody
 * else will, as a process that dequeues it later finds it ended and leaves it. False when it had begun
 * meanwhile: its runner stops and reverts it.
 */
export async function failUnstarted(f: FinishDeps, revert: Revert, task: TaskRow, message: string): Promise<boolean> {
  const { deps } = f;
  if (!(await deps.tasks.transition(task.id, ['pending'], { status: 'failure', message, ...ended(f) }))) return false;
  logTaskFailure(deps.log, task.id, task.image_id, message);
  await revert(f, task, task.image_id ? await deps.images.get(task.image_id) : null);
  await notifyTask(deps, 'task.failure', task.id);
  return true;
}

/**
 * The revert of an import (and of a location import, which has no `input` to give): staged data and any
 * data it already wrote are removed, the image goes back to queued (copy-image leaves it active, and
 * takes back the copies it made unless all_stores_must_succeed was false) with the formats and
 * properties the import had overwritten, the store that failed listed as failed (fan-out.ts) and those
 * not yet written no longer listed as being imported to,
 * and the lock is dropped. Only while the task holds the image's lock: staged data of an image another
 * import holds now is that import's.
 */
export async function revertImport(f: FinishDeps, task: TaskRow, image: Image | null, input: Partial<ImportInput>): Promise<null> {
  const { deps, staging } = f;
  if (!image) {
    if (task.image_id) await staging.remove(task.image_id).catch(() => {}); // deleted: whatever this import staged goes
    return null;
  }
  if (image.properties[IMPORT_LOCK] !== task.id) return null;
  const notGlanceDirect = input.import_req?.method.name !== 'glance-direct';
  if (image.status === 'queued' || (image.status === 'uploading' && notGlanceDirect)) {
    // It never began (its start was refused, or the user staged while it waited for its turn): nothing
    // of it to undo, and data staged meanwhile is not its own.
    await deps.images.releaseImportLock(image.id, task.id);
    return null;
  }
  await staging.remove(image.id).catch(() => {});
  // The stores this import had still to write to (all of them where its input is not known). When the
  // import recorded where it failed (fan-out.ts; its stores' earlier failures were cleared as it began),
  // the others were never tried: as in Glance's revert they are no failures, and here no longer listed
  // as being imported to either. When it recorded nothing (its process died, its task vanished), which
  // store it was writing is not known: all of them are listed as failed.
  const unfinished = [...storesListed(image.properties, IMPORTING_TO_STORES)].filter((id) => !input.backend || input.backend.includes(id));
  const failedNow = storesListed(image.properties, FAILED_IMPORT);
  const failureRecorded = (input.backend ?? []).some((id) => id !== null && failedNow.has(id));
  const progress = unfinished.length ? storeProgress(image.properties, failureRecorded ? { dropped: unfinished } : { failed: unfinished }) : {};
  if (image.status === 'importing' || image.status === 'uploading') {
    // A queued image holds no data: whatever this import already wrote goes.
    for (const location of await deps.images.locationsOf(image.id)) {
      await deps.images.discardLocation(location.id);
      await scrubLocation(deps, location);
    }
    // glance-download copied formats and properties from the remote image: the old ones go back.
    const formats = input.previous ? { disk_format: input.previous.disk_format, container_format: input.previous.container_format } : {};
    await deps.images.updateFields(
      image.id,
      ['importing', 'uploading'],
      { ...resetToQueued(), ...formats },
      { ...previousPropertyWrites(input.previous), ...progress },
    );
  } else {
    // A copy to every store or none (Glance reverts each store's copy): the copies this task made, as it
    // recorded them, go, unless the image would be left without data (its source removed meanwhile).
    const takesBack = input.import_req?.method.name === 'copy-image' && input.import_req.all_stores_must_succeed !== false;
    const made = new Set(input.copies ?? []);
    const candidates = takesBack ? (await deps.images.locationsOf(image.id)).filter((l) => made.has(l.id)) : [];
    // Decided under the image's lock: a removal from another store racing this revert must not leave
    // the image without data either.
    const discarded =
      candidates.length > 0 &&
      (await deps.images.discardLocationsKeepingOne(
        image.id,
        candidates.map((l) => l.id),
        null,
      )) === 'discarded';
    const copies = discarded ? candidates : [];
    for (const location of copies) await scrubLocation(deps, location);
    // A store this node lacks keeps its location for the scrubber of a node that has it (scrubLocation).
    // Only the stores whose copy failed are listed as failed, as Glance's revert lists them; the copies
    // taken back are simply no longer there.
    if (unfinished.length) await deps.images.setProperties(image.id, progress);
  }
  // Glance's revert saves the image it put back (queued, or the stores' outcome on a copy) while the
  // task still holds its lock.
  await notifyImage(deps, 'image.update', image.id);
  await deps.images.releaseImportLock(image.id, task.id);
  return null;
}
