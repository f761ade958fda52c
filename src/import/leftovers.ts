import { IMPORT_LOCK, resetToQueued } from '../domain/image.ts';
import { IMPORTING_TO_STORES } from '../domain/import-progress.ts';
import { isTerminal } from '../domain/task.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { failAndRevert, type FinishDeps } from './finish.ts';
import { revertOf } from './task-kinds.ts';

// What a process that stopped mid-task can leave behind, mended by every node's recovery sweep before
// it resumes orphaned tasks: images left importing, import locks of ended tasks, staged data nobody
// waits for.

/** One pass over each kind of leftover. */
export async function mendLeftovers(f: FinishDeps): Promise<void> {
  await revertAbandonedImports(f);
  await releaseLocksOfFinishedTasks(f);
  await removeOrphanedStagedData(f);
}

/**
 * A task ends, then its lock goes: a process stopped in between leaves the image locked by a finished
 * task, which Glance keeps refusing imports for (409) until the lock is an hour old. Released here a
 * minute after the task ended.
 */
async function releaseLocksOfFinishedTasks({ deps }: FinishDeps): Promise<void> {
  for (const { imageId, taskId } of await deps.images.locksOfFinishedTasks(addSeconds(nowTimestamp(), -60), 50)) {
    await deps.images.releaseImportLock(imageId, taskId);
  }
}

/**
 * Staged data of images that are gone, or that no longer wait for an import (finished, reverted). An
 * image whose import lock is held is left alone: a copy-image stages the data of an active image.
 */
async function removeOrphanedStagedData({ deps, staging }: FinishDeps): Promise<void> {
  // Writes in progress (dot-names of local staging) are not listed; they are swept at start. A staging
  // store that cannot be listed now must not hold up the resumption of tasks: the next sweep tries again.
  const names = await staging.names().catch((err: unknown) => {
    deps.log.warn({ err }, 'could not list the staging area; its sweep waits for the next round');
    return [] as string[];
  });
  for (const name of names) {
    // `<id>.<suffix>` is a plugin's work file (a conversion's output): it belongs to image <id>.
    const image = await deps.images.get(name.split('.')[0]!);
    const awaited = image && (['uploading', 'importing'].includes(image.status) || image.properties[IMPORT_LOCK]);
    if (!awaited) await staging.remove(name);
  }
}

/**
 * Images left `importing` by a task that ended without reverting them (its kind's revert, as if it had
 * failed now), or whose task vanished (back to queued, without the stores it was writing to).
 */
async function revertAbandonedImports(f: FinishDeps): Promise<void> {
  const { deps, staging } = f;
  for (const id of await deps.images.idsInStatus('importing')) {
    const image = await deps.images.get(id);
    if (!image) continue;
    const holder = image.properties[IMPORT_LOCK];
    const task = holder ? await deps.tasks.getRaw(holder) : null;
    if (task && !isTerminal(task.status)) continue; // running, or resumable by the orphan sweep
    if (task) {
      await failAndRevert(f, revertOf(task), task, task.message); // its kind's revert; the task itself stays as it ended
      continue;
    }
    await staging.remove(id).catch(() => {});
    await deps.images.updateFields(id, 'importing', resetToQueued(), { [IMPORTING_TO_STORES]: '' });
    if (holder) await deps.images.releaseImportLock(id, holder);
  }
}
