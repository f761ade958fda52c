import type { Transaction } from 'kysely';
import type { Database } from '../schema.ts';
import type { Image, ImageLocation } from '../../domain/image.ts';
import { gazeError } from '../../domain/errors.ts';
import { nowTimestamp } from '../../domain/time.ts';
import { nextPosition } from './image-location-rows.ts';
import { toLocation } from './image-rows.ts';

// The location list of an image as a JSON patch left it, written inside the image's save.

/** Whether the list differs in its locations, their order or their metadata. */
export function locationsChanged(before: ImageLocation[], after: ImageLocation[]): boolean {
  return before.length !== after.length || before.some((l, i) => l.id !== after[i]!.id || JSON.stringify(l.metadata) !== JSON.stringify(after[i]!.metadata));
}

/**
 * Whether the image's visible (active) locations are still `expected`, in that order. A location list
 * is edited on what its writer read; a change another writer made since then means reading it again.
 */
export async function locationsUnchangedSince(trx: Transaction<Database>, imageId: string, expected: ImageLocation[]): Promise<boolean> {
  const rows = await trx.selectFrom('image_locations').selectAll().where('image_id', '=', imageId).where('status', '=', 'active').orderBy('position').execute();
  // A change of metadata alone counts too: the list written would put the older metadata back.
  return !locationsChanged(rows.map(toLocation), expected);
}

/**
 * Writes a changed location list (JSON-patch on /locations): new ones inserted active, dropped ones
 * queued for removal (pending_delete, the scrubber's work), all in the list's order. Locations being
 * written meanwhile (pending) are left as they are.
 */
export async function writeLocationList(trx: Transaction<Database>, image: Image, original: Image, maxLocations: number): Promise<void> {
  const kept = new Set(image.locations.map((l) => l.id));
  const dropped = original.locations.filter((l) => !kept.has(l.id)).map((l) => l.id);
  const now = nowTimestamp();
  if (dropped.length) {
    await trx
      .updateTable('image_locations')
      .set({ status: 'pending_delete', updated_at: now })
      .where('image_id', '=', image.id)
      .where('id', 'in', dropped)
      .where('status', '=', 'active')
      .execute();
  }
  const base = await nextPosition(trx, image.id);
  const existing = new Set(original.locations.map((l) => l.id));
  for (const [index, location] of image.locations.entries()) {
    const fields = { position: base + index, metadata: JSON.stringify(location.metadata), updated_at: now };
    if (existing.has(location.id)) {
      await trx.updateTable('image_locations').set(fields).where('id', '=', location.id).where('image_id', '=', image.id).execute();
    } else {
      await trx
        .insertInto('image_locations')
        .values({ ...fields, id: location.id, image_id: image.id, url: location.url, status: 'active', created_at: now })
        .execute();
    }
  }
  // Counted under the image's row lock: concurrent additions cannot pass image_location_quota together.
  if (maxLocations >= 0) {
    const row = await trx
      .selectFrom('image_locations')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('image_id', '=', image.id)
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    if (Number(row.n) > maxLocations) throw gazeError('LOCATION_QUOTA', Number(row.n), maxLocations);
  }
}
