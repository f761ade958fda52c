import type { TasksRepo } from '../db/repos/tasks.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { PropertyProtections } from '../auth/property-protections.ts';
import type { DataDeps } from '../ingest/store-data.ts';

/** What the import engine needs: the data path's parts, the task rows, notifications, property protections. */
export interface ImportDeps extends DataDeps {
  tasks: TasksRepo;
  notifier: Notifier;
  propertyProtections?: PropertyProtections | null;
}
