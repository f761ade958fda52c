import { apiImport } from './api-import.ts';
import { legacyImport } from './legacy-task.ts';
import { locationImport } from './location-import.ts';
import type { TaskRow } from '../db/repos/tasks.ts';
import { revertImport, type Revert } from './finish.ts';
import type { TaskKind } from './task-kind.ts';

/** Each task `type` the engine runs. */
export const TASK_KINDS: Readonly<Record<string, TaskKind>> = {
  api_image_import: apiImport,
  import: legacyImport,
  location_import: locationImport,
};

export function kindOf(task: TaskRow): TaskKind | undefined {
  return Object.hasOwn(TASK_KINDS, task.type) ? TASK_KINDS[task.type] : undefined;
}

/**
 * How a failed task of this kind is undone. A type this engine does not run (a row another version
 * wrote) gets an import's revert, which acts only on an image whose import lock the task holds.
 */
export function revertOf(task: TaskRow): Revert {
  return kindOf(task)?.revert ?? ((f, row, image) => revertImport(f, row, image, {}));
}

/** The import method a task runs (its type for the legacy and location tasks), for metrics. */
export function methodOf(task: TaskRow): string {
  return kindOf(task)?.method?.(task) ?? task.type;
}
