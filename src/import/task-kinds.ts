import { apiImport } from './api-import.ts';
import { legacyImport } from './legacy-task.ts';
import { locationImport } from './location-import.ts';
import type { TaskKind } from './task-kind.ts';

/** Each task `type` the engine runs. */
export const TASK_KINDS: Readonly<Record<string, TaskKind>> = {
  api_image_import: apiImport,
  import: legacyImport,
  location_import: locationImport,
};
