import type { Kysely } from 'kysely';
import { retryOnDeadlock } from '../deadlock.ts';
import type { Database } from '../schema.ts';
import type { Db } from '../connection.ts';
import type { ImageLocation } from '../../domain/image.ts';
import { checkStatusChange, IMPORT_LOCK } from '../../domain/image.ts';
import { nowTimestamp } from '../../domain/time.ts';
import { toLocation } from './image-rows.ts';
import { DELAYED, LIVE, moveLocations } from './image-location-rows.ts';
import { dropRelations, removeProperty } from './image-property-writes.ts';

// Glance's delayed delete ([DEFAULT] delayed_delete): a deleted image that has data becomes
// pending_delete. It is hidden as a deleted image is (deleted = 1), but keeps its properties, tags,
// members and data. Its live locations become DELAYED, which no scrubber takes (unlike pending_delete,
// which a failed write may have left before), until scrub_time has passed since the deletion. Then the
// scrubber ends the delete (the image becomes deleted, its locations pending_delete) before it removes
// any data; a restore makes it active again. Each of the two takes the image out of pending_delete with
// one conditional update, so only one of them ever acts on an image.

/** The one status a delayed delete leaves (Glance's table has no other way into pending_delete). */
const WITH_DATA = ['active'] as const;

/** A pending_delete image as the restore sees it. */
export interface DelayedDelete {
  status: string;
  size: number | null;
}

class NoData extends Error {}

export class DelayedDeletesRepo {
  constructor(private readonly db: Db) {}

  private get k(): Kysely<Database> {
    return this.db.kysely;
  }

  /**
   * Deletes the image as pending_delete, keeping its data: true when it was active with data, false
   * when it is gone, protected, in another status or without data (the caller deletes it at once then,
   * unless it is protected).
   */
  async mark(id: string): Promise<boolean> {
    checkStatusChange(WITH_DATA, 'pending_delete');
    const now = nowTimestamp();
    try {
      return await retryOnDeadlock(() =>
        this.k.transaction().execute(async (trx) => {
          // The update first: it takes the image's row lock, as every write to the image's rows does.
          const res = await trx
            .updateTable('images')
            .set({ status: 'pending_delete', deleted: 1, deleted_at: now, updated_at: now })
            .where('id', '=', id)
            .where('deleted', '=', 0)
            .where('protected', '=', 0)
            .where('status', 'in', [...WITH_DATA])
            .executeTakeFirst();
          if (Number(res.numUpdatedRows) !== 1) return false;
          const data = await trx.selectFrom('image_locations').select('id').where('image_id', '=', id).where('status', '=', 'active').executeTakeFirst();
          if (!data) throw new NoData();
          await moveLocations(trx, id, now, LIVE, DELAYED);
          return true;
        }),
      );
    } catch (err) {
      if (err instanceof NoData) return false;
      throw err;
    }
  }

  /** Images whose delayed delete is due: pending_delete since before `deletedBefore`, oldest first. */
  async due(deletedBefore: string, limit: number): Promise<string[]> {
    const rows = await this.k
      .selectFrom('images')
      .select('id')
      .where('status', '=', 'pending_delete')
      .where('deleted_at', '<', deletedBefore)
      .orderBy('deleted_at')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Ends the delayed delete: the image becomes deleted and loses its properties, tags and members, as
   * an immediate delete does, and its kept locations are queued for removal. Returns them, or null when
   * a restore (or another node's scrubber) took the image out of pending_delete first.
   */
  async finish(id: string): Promise<ImageLocation[] | null> {
    checkStatusChange(['pending_delete'], 'deleted');
    const now = nowTimestamp();
    return this.k.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('images')
        .set({ status: 'deleted', updated_at: now })
        .where('id', '=', id)
        .where('status', '=', 'pending_delete')
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return null;
      await dropRelations(trx, id);
      const rows = await trx.selectFrom('image_locations').selectAll().where('image_id', '=', id).where('status', '=', DELAYED).execute();
      await moveLocations(trx, id, now, [DELAYED], 'pending_delete');
      return rows.map((row) => toLocation({ ...row, status: 'pending_delete' }));
    });
  }

  /** The image whatever its state, deleted ones included; null when the id was never used. */
  async find(id: string): Promise<DelayedDelete | null> {
    const row = await this.k.selectFrom('images').select(['status', 'size']).where('id', '=', id).executeTakeFirst();
    return row ? { status: row.status, size: row.size } : null;
  }

  /** The locations the image's delayed delete kept (not those queued for removal before it, by a failed write). */
  async keptLocations(id: string): Promise<ImageLocation[]> {
    const rows = await this.k.selectFrom('image_locations').selectAll().where('image_id', '=', id).where('status', '=', DELAYED).orderBy('position').execute();
    return rows.map(toLocation);
  }

  /**
   * Makes the image active again with the given locations (those whose data was found whole), as
   * Glance's restore does whatever status it had; its other kept locations are queued for removal. An
   * import that was running when it was deleted no longer holds it. False when it is no longer
   * pending_delete (the scrubber came first).
   */
  async restore(id: string, locationIds: string[]): Promise<boolean> {
    checkStatusChange(['pending_delete'], 'active');
    if (locationIds.length === 0) return false;
    const now = nowTimestamp();
    return this.k.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('images')
        .set({ status: 'active', deleted: 0, deleted_at: null, updated_at: now })
        .where('id', '=', id)
        .where('status', '=', 'pending_delete')
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await trx
        .updateTable('image_locations')
        .set({ status: 'active', updated_at: now })
        .where('image_id', '=', id)
        .where('id', 'in', locationIds)
        .where('status', '=', DELAYED)
        .execute();
      await moveLocations(trx, id, now, [DELAYED], 'pending_delete');
      await removeProperty(trx, id, IMPORT_LOCK);
      return true;
    });
  }
}
