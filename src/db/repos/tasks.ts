import type { Db } from '../connection.ts';
import type { TasksTable } from '../schema.ts';
import { nowTimestamp } from '../../domain/time.ts';
import { orderNullsLow } from '../dialect.ts';
import { afterMarker } from '../keyset.ts';
import { checkTaskStatusChange } from '../../domain/task.ts';

export type TaskRow = TasksTable;

/** The task columns a list may be sorted by: every column of Glance's task model (its paginator takes any). */
export const TASK_SORT_KEYS = [
  'id',
  'type',
  'status',
  'owner',
  'expires_at',
  'image_id',
  'request_id',
  'user_id',
  'created_at',
  'updated_at',
  'deleted_at',
  'deleted',
] as const;
export type TaskSortKey = (typeof TASK_SORT_KEYS)[number];

/** The columns a list query parameter filters on, as Glance's task_get_all compares any column of its model (`deleted` aside). */
export const TASK_FILTER_COLUMNS = TASK_SORT_KEYS.filter((column) => column !== 'deleted');
export type TaskFilterColumn = Exclude<TaskSortKey, 'deleted'>;

export interface TaskListQuery {
  owner: string | null; // null: every owner (admin)
  /** Each column equal to its value (a column may come more than once). */
  filters?: ReadonlyArray<readonly [TaskFilterColumn, string]>;
  sortKey: TaskSortKey;
  sortDir: 'asc' | 'desc';
  limit: number;
  marker?: TaskRow;
}

/** Task rows, with the lease columns the import runner uses to survive restarts. */
export class TasksRepo {
  constructor(private readonly db: Db) {}

  private get k() {
    return this.db.kysely;
  }

  async insert(row: TaskRow): Promise<void> {
    await this.k.insertInto('tasks').values(row).execute();
  }

  /** A visible task: not deleted, and not expired unless `expiredToo`. */
  async get(id: string, opts: { expiredToo?: boolean } = {}): Promise<TaskRow | null> {
    const row = await this.k.selectFrom('tasks').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!row || (!opts.expiredToo && row.expires_at !== null && row.expires_at <= nowTimestamp())) return null;
    return row;
  }

  /** Any row, expired or not (lock checks need the truth). */
  async getRaw(id: string): Promise<TaskRow | null> {
    return (await this.k.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }

  listForImage(imageId: string): Promise<TaskRow[]> {
    return this.k
      .selectFrom('tasks')
      .selectAll()
      .where('image_id', '=', imageId)
      .where('deleted', '=', 0)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowTimestamp())]))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  list(q: TaskListQuery): Promise<TaskRow[]> {
    let query = this.k
      .selectFrom('tasks')
      .selectAll()
      .where('deleted', '=', 0)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowTimestamp())]));
    if (q.owner !== null) query = query.where('owner', '=', q.owner);
    for (const [column, value] of q.filters ?? []) query = query.where(column, '=', value);
    // created_at and id, after the given key unless it is one of them (sort_key=id is created_at, id
    // in Glance), all in the one direction.
    const keys: TaskSortKey[] = q.sortKey === 'created_at' || q.sortKey === 'id' ? ['created_at', 'id'] : [q.sortKey, 'created_at', 'id'];
    if (q.marker) {
      const m = q.marker;
      const keyset = keys.map((column) => ({ column, dir: q.sortDir }));
      query = query.where((eb) => afterMarker(eb, keyset, (column) => m[column as TaskSortKey]));
    }
    for (const key of keys) query = query.orderBy(orderNullsLow(this.db.engine, key, q.sortDir));
    return query.limit(q.limit).execute();
  }

  /** Compare-and-set of the status (plus other columns); false when the task was not in one of `from`. */
  async transition(id: string, from: string[], fields: Partial<Omit<TaskRow, 'id'>>): Promise<boolean> {
    if (fields.status !== undefined) checkTaskStatusChange(from, fields.status);
    const res = await this.k
      .updateTable('tasks')
      .set({ ...fields, updated_at: nowTimestamp() })
      .where('id', '=', id)
      .where('status', 'in', from)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async setInput(id: string, input: string): Promise<void> {
    await this.k.updateTable('tasks').set({ input, updated_at: nowTimestamp() }).where('id', '=', id).execute();
  }

  async setMessage(id: string, message: string): Promise<void> {
    await this.k.updateTable('tasks').set({ message, updated_at: nowTimestamp() }).where('id', '=', id).execute();
  }

  /** Takes (or renews) the lease of a task for `owner`; false when another live owner holds it. */
  async claim(id: string, owner: string, until: string): Promise<boolean> {
    const now = nowTimestamp();
    const res = await this.k
      .updateTable('tasks')
      .set({ lease_owner: owner, lease_expires_at: until })
      .where('id', '=', id)
      .where('status', 'in', ['pending', 'processing'])
      .where((eb) =>
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]),
      )
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Takes a task over from a holder known to be dead, whatever its lease says (compare-and-set on the holder). */
  async claimFrom(id: string, deadOwner: string, owner: string, until: string): Promise<boolean> {
    const res = await this.k
      .updateTable('tasks')
      .set({ lease_owner: owner, lease_expires_at: until })
      .where('id', '=', id)
      .where('status', 'in', ['pending', 'processing'])
      .where('lease_owner', '=', deadOwner)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Unfinished tasks held by owners whose name starts with `prefix` (this host's processes). */
  heldWithPrefix(prefix: string, limit: number): Promise<TaskRow[]> {
    return this.k
      .selectFrom('tasks')
      .selectAll()
      .where('status', 'in', ['pending', 'processing'])
      .where('deleted', '=', 0)
      .where('lease_owner', 'like', `${prefix}%`)
      .limit(limit)
      .execute();
  }

  /** The images that unfinished tasks work on (an import or a copy may be writing their data). */
  async unfinishedImageIds(): Promise<string[]> {
    const rows = await this.k
      .selectFrom('tasks')
      .select('image_id')
      .distinct()
      .where('status', 'in', ['pending', 'processing'])
      .where('deleted', '=', 0)
      .where('image_id', 'is not', null)
      .execute();
    return rows.map((row) => row.image_id!);
  }

  /** Unfinished tasks whose holder is gone (no lease, or an expired one). */
  async orphaned(limit: number): Promise<TaskRow[]> {
    const now = nowTimestamp();
    return this.k
      .selectFrom('tasks')
      .selectAll()
      .where('status', 'in', ['pending', 'processing'])
      .where('deleted', '=', 0)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
      .orderBy('created_at')
      .limit(limit)
      .execute();
  }
}
