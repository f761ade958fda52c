import type { Transaction } from 'kysely';
import type { Database } from '../schema.ts';
import { NULL_VALUE, type ImageProperties, type PropertyWrites } from '../../domain/image.ts';

// The rows of an image's properties and tags, written inside the caller's transaction.

/**
 * The text a property is stored as. A property that schema-image.json types (integer, boolean) arrives
 * as such, and the column holds text, as Glance's does: its value reads back as PostgreSQL casts it
 * (4 as "4", true as "true") on every engine (SQLite would keep the number and refuse the boolean).
 */
function storedText(value: unknown): string | null {
  if (typeof value === 'string' || value === null) return value;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Adds properties the image does not have yet (a new image, or names just cleared); null stays null.
 * Each goes after those the image has: Glance lists properties in the order they were first set (its
 * rows' ids). `firstPosition` saves the lookup where the image has none yet.
 */
export async function insertProperties(trx: Transaction<Database>, imageId: string, properties: ImageProperties, firstPosition?: number): Promise<void> {
  const entries = Object.entries(properties);
  if (!entries.length) return;
  const first = firstPosition ?? (await nextPosition(trx, imageId));
  const rows = entries.map(([name, value], i) => ({ image_id: imageId, name, value: storedText(value), position: first + i }));
  await trx.insertInto('image_properties').values(rows).execute();
}

async function nextPosition(trx: Transaction<Database>, imageId: string): Promise<number> {
  const row = await trx
    .selectFrom('image_properties')
    .select((eb) => eb.fn.max('position').as('last'))
    .where('image_id', '=', imageId)
    .executeTakeFirst();
  return Number(row?.last ?? 0) + 1;
}

/**
 * Sets each property to its value, removes it for null, or keeps it with the value null for NULL_VALUE.
 * A property the image has changes in place, keeping its place in the list.
 */
export async function setPropertiesIn(trx: Transaction<Database>, imageId: string, properties: PropertyWrites): Promise<void> {
  const added: ImageProperties = {};
  for (const [name, value] of Object.entries(properties)) {
    if (value === null) {
      await trx.deleteFrom('image_properties').where('image_id', '=', imageId).where('name', '=', name).execute();
      continue;
    }
    const stored = value === NULL_VALUE ? null : storedText(value);
    const updated = await trx
      .updateTable('image_properties')
      .set({ value: stored })
      .where('image_id', '=', imageId)
      .where('name', '=', name)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) added[name] = stored;
  }
  await insertProperties(trx, imageId, added);
}

/** Adds tags (each once). */
export async function insertTags(trx: Transaction<Database>, imageId: string, tags: string[]): Promise<void> {
  const rows = [...new Set(tags)].map((value) => ({ image_id: imageId, value }));
  if (rows.length) await trx.insertInto('image_tags').values(rows).execute();
}

/** What an image loses when it is deleted for good. */
export async function dropRelations(trx: Transaction<Database>, id: string): Promise<void> {
  await trx.deleteFrom('image_properties').where('image_id', '=', id).execute();
  await trx.deleteFrom('image_tags').where('image_id', '=', id).execute();
  await trx.deleteFrom('image_members').where('image_id', '=', id).execute();
}
