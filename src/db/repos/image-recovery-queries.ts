import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { IMPORT_LOCK, STAGE_HOST, UPLOAD_NODE, type ImageStatus } from '../../domain/image.ts';

// Reads of the recovery passes, which every node runs often: one query each, however many images.

export interface WriteInProgress {
  id: string;
  status: ImageStatus;
  /** Who writes the data (os_glance_upload_node), when named. */
  writer: string | null;
  /** The node whose own staging holds the staged data (os_glance_stage_host). */
  stageHost: string | null;
  owner: string | null;
}

/** The images in these statuses with their writer and stage host. */
export async function writesInStatuses(k: Kysely<Database>, statuses: readonly ImageStatus[]): Promise<WriteInProgress[]> {
  const rows = await k
    .selectFrom('images')
    .leftJoin('image_properties as w', (join) => join.onRef('w.image_id', '=', 'images.id').on('w.name', '=', UPLOAD_NODE))
    .leftJoin('image_properties as h', (join) => join.onRef('h.image_id', '=', 'images.id').on('h.name', '=', STAGE_HOST))
    .select(['images.id', 'images.status', 'images.owner', 'w.value as writer', 'h.value as stageHost'])
    .where('images.status', 'in', [...statuses])
    .where('images.deleted', '=', 0)
    .execute();
  return rows.map((row) => ({ id: row.id, status: row.status as ImageStatus, writer: row.writer ?? null, stageHost: row.stageHost ?? null, owner: row.owner }));
}

/**
 * Import locks held by a task that finished before `before`, on images not left `importing` (those are
 * reverted first): a process stopped between the task's end and the lock's release.
 */
export function locksOfFinishedTasks(k: Kysely<Database>, before: string, limit: number): Promise<Array<{ imageId: string; taskId: string }>> {
  return k
    .selectFrom('image_properties as p')
    .innerJoin('tasks as t', 't.id', 'p.value')
    .innerJoin('images as i', 'i.id', 'p.image_id')
    .select(['p.image_id as imageId', 'p.value as taskId'])
    .where('p.name', '=', IMPORT_LOCK)
    .$narrowType<{ taskId: string }>()
    .where('t.status', 'in', ['success', 'failure'])
    .where('t.updated_at', '<', before)
    .where('i.status', '<>', 'importing')
    .limit(limit)
    .execute();
}
