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

/** Adds properties the image does not have yet (a new image, or names just cleared); null stays null. */
export async function insertProperties(trx: Transaction<Database>, imageId: string, properties: ImageProperties): Promise<void> {
  const rows = Object.entries(properties).map(([name, value]) => ({ image_id: imageId, name, value: storedText(value) }));
  if (rows.length) await trx.insertInto('image_properties').values(rows).execute();
}

/** Sets each property to its value, removes it for null, or keeps it with the value null for NULL_VALUE. */
export async function setPropertiesIn(trx: Transaction<Database>, imageId: string, properties: PropertyWrites): Promise<void> {
  for (const [name, value] of Object.entries(properties)) {
    await trx.deleteFrom('image_properties').where('image_id', '=', imageId).where('name', '=', name).execute();
    if (value !== null)
      await trx
        .insertInto('image_properties')
        .values({ image_id: imageId, name, value: value === NULL_VALUE ? null : storedText(value) })
        .execute();
  }
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
