import type { Db } from '../connection.ts';
import type { TasksTable } from '../schema.ts';

export type TaskRow = TasksTable;

/** Task rows; the import runner (next issue) adds leases on top of these. */
export class TasksRepo {
  constructor(private readonly db: Db) {}

  async insert(row: TaskRow): Promise<void> {
    await this.db.kysely.insertInto('tasks').values(row).execute();
  }

  async get(id: string): Promise<TaskRow | null> {
    return (await this.db.kysely.selectFrom('tasks').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()) ?? null;
  }

  listForImage(imageId: string): Promise<TaskRow[]> {
    return this.db.kysely.selectFrom('tasks').selectAll().where('image_id', '=', imageId).where('deleted', '=', 0)
      .orderBy('created_at').execute();
  }
}
