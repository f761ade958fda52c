import type { TaskRow } from '../db/repos/tasks.ts';
import type { Image } from '../domain/image.ts';
import type { FinishDeps, Revert } from './finish.ts';
import type { ImportJob } from './job.ts';

/** Creates the image of a legacy task, as the image service does for POST /v2/images from its submitter. */
export type CreateImage = (owner: string, properties: Record<string, unknown>, submitter: { roles: string[]; isAdmin: boolean }) => Promise<Image>;

/** What the scheduler hands every kind of task. */
export interface TaskJob extends Omit<ImportJob, 'input'> {
  finish: FinishDeps;
  createImage: CreateImage;
  /** Tells the scheduler the task's image once the task knows it (a legacy task creates its own). */
  trackImage(imageId: string): void;
}

/** One `type` of task: runs it to its end, success included. A throw fails it, after its own revert. */
export interface TaskKind {
  run(job: TaskJob): Promise<void>;
  revert: Revert;
  /** The method a task of this kind runs, for metrics; the task's type where the kind has one method. */
  method?(task: TaskRow): string;
}
