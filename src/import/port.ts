import type { TaskRow } from '../db/repos/tasks.ts';
import type { CallerCredentials } from './job.ts';

export type { CallerCredentials };
/** The message of an import stopped because its image was deleted. */
export { IMAGE_DELETED } from './failures.ts';

/** What a service says of a new task; the engine makes the rest of the row (id, status, times, lease). */
export type NewTask = Pick<TaskRow, 'type' | 'owner' | 'input' | 'image_id' | 'request_id' | 'user_id'>;

/** All the services see of the import engine. */
export interface ImportEngine {
  /** The row to insert for a new task: held by this process from the start, so no other takes it first. */
  newTask(fields: NewTask): TaskRow;
  /** Runs an inserted task. `caller` (glance-download's token and catalog) stays in memory only. */
  submit(task: TaskRow, caller?: CallerCredentials): void;
  /** Fails a task that has not begun and undoes its acceptance (the import lock); false when it has begun. */
  cancelPending(task: TaskRow, reason: string): Promise<boolean>;
  /** Fails an unfinished task from outside its run (a cancel, a stale lock taken over); false when it had ended already. */
  failUnfinished(task: TaskRow, reason: string): Promise<boolean>;
  /** Whether a process works on this task now (it keeps renewing its claim), however long since it last reported. */
  isWorkedOn(task: TaskRow): boolean;
  /** Stops this process's work on an image's import at once (others notice on their next heartbeat). */
  cancel(imageId: string, reason: string): void;
  /** Removes the data staged for an image (it was deleted); nothing staged is no error. */
  discardStaged(imageId: string): Promise<void>;
  /** The size of the remote image a glance-download names, or null when it cannot be read now. */
  remoteImageSize(caller: CallerCredentials, method: Record<string, unknown>): Promise<number | null>;
}
