import { taskPayload } from '../notify/payloads.ts';
import type { RequestContext } from '../auth/context.ts';
import { IMPORT_LOCK, type Image } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { isTerminal } from '../domain/task.ts';
import type { ImportEngine } from '../import/port.ts';
import type { ServiceDeps } from './deps.ts';

// The import lock (os_glance_import_task): one task at a time works on an image's data. Taken by
// POST /import and by the locations API.

// A lock older than this (since its task last changed) may be taken over; Glance's numbers.
const STALE_LOCK_MINUTES = 60;
const STALE_PENDING_LOCK_MINUTES = 120;

/**
 * 409 while a live task holds the image; a stale lock is taken over (its task failed) as Glance does. A
 * task a process still works on is never stale here (a long copy reports nothing while it stages).
 */
export async function takeOverStaleLock(deps: ServiceDeps, engine: Pick<ImportEngine, 'isWorkedOn' | 'failUnfinished'>, image: Image): Promise<void> {
  const holder = image.properties[IMPORT_LOCK];
  if (!holder) return;
  const task = await deps.tasks.getRaw(holder);
  if (task) {
    const minutes = task.status === 'pending' ? STALE_PENDING_LOCK_MINUTES : STALE_LOCK_MINUTES;
    if (addSeconds(task.updated_at, minutes * 60) > nowTimestamp() || engine.isWorkedOn(task)) throw gazeError('IMPORT_ACTIVE_TASK');
    if (!isTerminal(task.status)) await engine.failUnfinished(task, 'Expired lock preempted');
  }
  if (!(await deps.images.releaseImportLock(image.id, holder))) throw gazeError('IMPORT_ACTIVE_TASK');
}

/**
 * Records a task for the image, takes the image's lock for it (409 if another took it first) and hands
 * it to the engine. `stillStartable` looks at the image again once the lock is held and throws when the
 * task may no longer start: another import may have begun, ended and let the lock go since the caller
 * read the image (it turned active meanwhile).
 */
export async function startLockedTask(
  deps: ServiceDeps,
  engine: ImportEngine,
  ctx: RequestContext,
  imageId: string,
  type: string,
  input: unknown,
  stillStartable: (image: Image) => void = () => {},
): Promise<void> {
  const task = engine.newTask({
    type,
    owner: ctx.projectId ?? '',
    input: JSON.stringify(input),
    image_id: imageId,
    request_id: ctx.requestId,
    user_id: ctx.userId,
  });
  await deps.tasks.insert(task);
  // A request refused here (409) takes its task with it, as in Glance, which records a task only once it
  // holds the lock. (It is recorded first here so that the lock never names a task that is not there.)
  const refuse = async (error: unknown, message: string) => {
    await deps.tasks.transition(task.id, ['pending'], { status: 'failure', message, deleted: 1, deleted_at: nowTimestamp() });
    throw error;
  };
  if (!(await deps.images.takeImportLock(imageId, task.id))) return refuse(gazeError('IMPORT_LOCK_LOST', imageId), 'Another import took the image first.');
  const now = await deps.images.get(imageId);
  try {
    if (!now) throw gazeError('IMAGE_NOT_FOUND', imageId);
    stillStartable(now);
  } catch (err) {
    await deps.images.releaseImportLock(imageId, task.id);
    // The task says why, as one that had started would (Glance's words for a deleted image).
    return refuse(err, now ? (err as Error).message : 'Image has been deleted, aborting import.');
  }
  deps.notifier.info('task.create', taskPayload(task));
  engine.submit(task, { token: ctx.authToken, catalog: ctx.serviceCatalog });
}
