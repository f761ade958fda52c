import { sql, type Kysely, type Transaction } from 'kysely';
import type { Db } from '../connection.ts';
import type { Database } from '../schema.ts';
import type { ImageLocation } from '../../domain/image.ts';
import { nowTimestamp } from '../../domain/time.ts';
import { toLocation } from './image-rows.ts';

// The rows of the data lifecycle of locations: reserved before a write (pending), made visible with it
// (active), queued for removal (pending_delete), or kept by a delayed delete (DELAYED). The images
// repository reserves and activates inside its own transactions, after it checked the image's status;
// the reads need no such check.

/** Locations whose data may exist: active, or a write that may have begun. */
export const LIVE = ['pending', 'active'] as const;

/** Locations of an image deleted with delayed_delete: their data waits for the scrubber or a restore. */
export const DELAYED = 'delayed_delete';

/** The position after every row of the image's: a location put there comes last in its list. */
export async function nextPosition(trx: Transaction<Database>, imageId: string): Promise<number> {
  const max = await trx
    .selectFrom('image_locations')
    .select((eb) => eb.fn.max('position').as('p'))
    .where('image_id', '=', imageId)
    .executeTakeFirst();
  return Number(max?.p ?? -1) + 1;
}

/** The image's row for `url` (a resumed write), or a new pending one at the end of its list. */
export async function findOrInsertPendingLocation(
  trx: Transaction<Database>,
  imageId: string,
  url: string,
  metadata: Record<string, unknown>,
): Promise<ImageLocation> {
  const existing = await trx
    .selectFrom('image_locations')
    .selectAll()
    .where('image_id', '=', imageId)
    .where('url', '=', url)
    .where('status', 'in', LIVE)
    .executeTakeFirst();
  if (existing) return toLocation(existing);
  const now = nowTimestamp();
  const row = {
    id: crypto.randomUUID(),
    image_id: imageId,
    position: await nextPosition(trx, imageId),
    url,
    metadata: JSON.stringify(metadata),
    status: 'pending',
    created_at: now,
    updated_at: now,
  };
  await trx.insertInto('image_locations').values(row).execute();
  return toLocation(row);
}

/**
 * Makes a reserved (or already active) location of the image visible, last in its list (a location list
 * saved while the data was written renumbered the others past it); false when it is not there.
 */
export async function activateLocationRow(trx: Transaction<Database>, imageId: string, locationId: string): Promise<boolean> {
  const last = await nextPosition(trx, imageId);
  const res = await trx
    .updateTable('image_locations')
    .set((eb) => ({
      // Only a reserved location moves: an active one keeps its place. Set first: MySQL evaluates the
      // assignments in order, and would otherwise see the new status.
      position: eb.case().when('status', '=', 'pending').then(last).else(eb.ref('position')).end(),
      status: 'active',
      updated_at: nowTimestamp(),
    }))
    .where('id', '=', locationId)
    .where('image_id', '=', imageId)
    .where('status', 'in', LIVE)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * The image's locations in one of the `from` statuses move to `to`, stamped `now`: live ones queued for
 * removal (pending_delete) or kept for a delayed delete (DELAYED: data no one removes until the delete
 * ends), and kept ones queued when it ends.
 */
export async function moveLocations(trx: Transaction<Database>, imageId: string, now: string, from: readonly string[], to: string): Promise<void> {
  await trx.updateTable('image_locations').set({ status: to, updated_at: now }).where('image_id', '=', imageId).where('status', 'in', from).execute();
}

/** Every location of an image whose data may exist, in order. */
export async function liveLocationsOf(k: Kysely<Database>, imageId: string): Promise<ImageLocation[]> {
  const rows = await k.selectFrom('image_locations').selectAll().where('image_id', '=', imageId).where('status', 'in', LIVE).orderBy('position').execute();
  return rows.map(toLocation);
}

/**
 * Locations whose data is to be removed from stores (deleted images, failed writes, failed store
 * deletes), queued before `settledBefore`: a write still under way when its image was deleted has had
 * time to stop by then.
 */
export async function locationsToScrub(k: Kysely<Database>, limit: number, settledBefore: string): Promise<ImageLocation[]> {
  const rows = await k
    .selectFrom('image_locations')
    .selectAll()
    .where('status', '=', 'pending_delete')
    .where('updated_at', '<', settledBefore)
    .orderBy('updated_at')
    .limit(limit)
    .execute();
  return rows.map(toLocation);
}

/** Locations that hold data or may hold it again (a delayed delete can be restored). */
export const HOLDING = [...LIVE, DELAYED] as const;

/**
 * The locations, of any image, in `statuses`, whose url ends as `url` does after its last '/': every
 * spelling of one object ends with its key, so these are the candidates for naming the same object.
 */
export async function locationsEndingAs(db: Db, url: string, statuses: readonly string[]): Promise<Array<ImageLocation & { imageId: string }>> {
  const tail = url.slice(url.lastIndexOf('/') + 1);
  const chars = [...tail].length;
  const ending = db.engine === 'sqlite' ? sql<string>`substr(url, ${-chars})` : sql<string>`right(url, ${chars})`;
  const rows = await db.kysely
    .selectFrom('image_locations')
    .selectAll()
    .where('status', 'in', [...statuses])
    .where(ending, '=', tail)
    .execute();
  return rows.map((row) => ({ ...toLocation(row), imageId: row.image_id }));
}
