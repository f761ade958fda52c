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
 * Glance lists properties in the order they were first set (its rows' ids): a name the image had
 * before gets its old place back, each other goes after every place the image has had.
 * `firstPosition` saves the lookups where the image has had none yet.
 */
export async function insertProperties(trx: Transaction<Database>, imageId: string, properties: ImageProperties, firstPosition?: number): Promise<void> {
  const entries = Object.entries(properties);
  if (!entries.length) return;
  const slots = firstPosition === undefined ? await slotsOf(trx, imageId, Object.keys(properties)) : new Map<string, number>();
  let next = firstPosition ?? (await nextPosition(trx, imageId));
  const rows = entries.map(([name, value]) => ({ image_id: imageId, name, value: storedText(value), position: slots.get(name) ?? next++ }));
  await trx.insertInto('image_properties').values(rows).execute();
  if (slots.size)
    await trx
      .deleteFrom('image_property_slots')
      .where('image_id', '=', imageId)
      .where('name', 'in', [...slots.keys()])
      .execute();
}

async function slotsOf(trx: Transaction<Database>, imageId: string, names: string[]): Promise<Map<string, number>> {
  const rows = await trx.selectFrom('image_property_slots').select(['name', 'position']).where('image_id', '=', imageId).where('name', 'in', names).execute();
  return new Map(rows.map((r) => [r.name, r.position]));
}

/** After every place the image's properties have had, removed ones included. */
async function nextPosition(trx: Transaction<Database>, imageId: string): Promise<number> {
  const last = async (table: 'image_properties' | 'image_property_slots') =>
    Number(
      (
        await trx
          .selectFrom(table)
          .select((eb) => eb.fn.max('position').as('last'))
          .where('image_id', '=', imageId)
          .executeTakeFirst()
      )?.last ?? 0,
    );
  return Math.max(await last('image_properties'), await last('image_property_slots')) + 1;
}

/**
 * Removes a property (only while it has `value`, when given), leaving its place for the day it is set
 * again; true when it was there.
 */
export async function removeProperty(trx: Transaction<Database>, imageId: string, name: string, value?: string): Promise<boolean> {
  const found = await trx
    .selectFrom('image_properties')
    .select(['position', 'value'])
    .where('image_id', '=', imageId)
    .where('name', '=', name)
    .executeTakeFirst();
  if (!found || (value !== undefined && found.value !== value)) return false;
  let removal = trx.deleteFrom('image_properties').where('image_id', '=', imageId).where('name', '=', name);
  if (value !== undefined) removal = removal.where('value', '=', value);
  if (Number((await removal.executeTakeFirst()).numDeletedRows) !== 1) return false;
  await trx.deleteFrom('image_property_slots').where('image_id', '=', imageId).where('name', '=', name).execute();
  await trx.insertInto('image_property_slots').values({ image_id: imageId, name, position: found.position }).execute();
  return true;
}

/** Every property of the image, and the places of those it had: a list written anew starts at 1. */
export async function clearProperties(trx: Transaction<Database>, imageId: string): Promise<void> {
  await trx.deleteFrom('image_properties').where('image_id', '=', imageId).execute();
  await trx.deleteFrom('image_property_slots').where('image_id', '=', imageId).execute();
}

/**
 * Sets each property to its value, removes it for null, or keeps it with the value null for NULL_VALUE.
 * A property the image has changes in place, keeping its place in the list.
 */
export async function setPropertiesIn(trx: Transaction<Database>, imageId: string, properties: PropertyWrites): Promise<void> {
  const added: ImageProperties = {};
  for (const [name, value] of Object.entries(properties)) {
    if (value === null) {
      await removeProperty(trx, imageId, name);
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
  await clearProperties(trx, id);
  await trx.deleteFrom('image_tags').where('image_id', '=', id).execute();
  await trx.deleteFrom('image_members').where('image_id', '=', id).execute();
}
