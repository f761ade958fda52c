import type { Db } from '../connection.ts';

/** Rows deleted at once: a long purge holds no lock for long, and an IN list stays short. */
const BATCH = 500;

/**
 * What glance-manage's `db purge` and `db purge_images_table` remove, of what Gaze keeps: rows past
 * their use since before `cutoff` (a stored timestamp), at most `maxRows` of each table (-1: all).
 */
export class PurgeRepo {
  constructor(private readonly db: Db) {}

  /**
   * Tasks that expired (or were deleted) before `cutoff`: no read shows them any more. Glance marks an
   * expired task deleted when tasks are listed, and purges it once deleted for the given age.
   */
  async purgeTasks(cutoff: string, maxRows: number): Promise<number> {
    const ids = this.db.kysely
      .selectFrom('tasks')
      .select('id')
      .where((eb) =>
        eb.or([eb.and([eb('expires_at', 'is not', null), eb('expires_at', '<', cutoff)]), eb.and([eb('deleted', '=', 1), eb('deleted_at', '<', cutoff)])]),
      )
      .orderBy('id');
    const found = (await (maxRows >= 0 ? ids.limit(maxRows) : ids).execute()).map((row) => row.id);
    let purged = 0;
    for (let i = 0; i < found.length; i += BATCH) {
      const res = await this.db.kysely
        .deleteFrom('tasks')
        .where('id', 'in', found.slice(i, i + BATCH))
        .executeTakeFirst();
      purged += Number(res.numDeletedRows);
    }
    return purged;
  }

  /**
   * Rows of images deleted before `cutoff` whose data is gone (no location left to scrub): their ids
   * may then be given to new images, as after Glance's purge_images_table.
   */
  async purgeImages(cutoff: string, maxRows: number): Promise<number> {
    const ids = this.db.kysely
      .selectFrom('images')
      .select('id')
      .where('deleted', '=', 1)
      .where('status', '=', 'deleted')
      .where('deleted_at', '<', cutoff)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('image_locations as l').select('l.id').whereRef('l.image_id', '=', 'images.id'))))
      .orderBy('id');
    const found = (await (maxRows >= 0 ? ids.limit(maxRows) : ids).execute()).map((row) => row.id);
    let purged = 0;
    for (let i = 0; i < found.length; i += BATCH) {
      const batch = found.slice(i, i + BATCH);
      purged += await this.db.kysely.transaction().execute(async (trx) => {
        // What a deleted image may still have (the places its removed properties held); the rest went with its delete.
        for (const table of ['image_property_slots', 'image_properties', 'image_tags', 'image_members'] as const) {
          await trx.deleteFrom(table).where('image_id', 'in', batch).execute();
        }
        const res = await trx.deleteFrom('images').where('id', 'in', batch).where('deleted', '=', 1).executeTakeFirst();
        return Number(res.numDeletedRows);
      });
    }
    return purged;
  }
}
