import { sql, type Transaction } from 'kysely';
import type { Database, MetadefObjectsTable, MetadefPropertiesTable } from '../schema.ts';
import type { Db } from '../connection.ts';
import { retryOnDeadlock } from '../deadlock.ts';
import { insertReturningId, orderNullsLow } from '../dialect.ts';
import { afterMarker } from '../keyset.ts';
import type { MetadefObject, MetadefProperty, MetadefTag, PropertyDefinition } from '../../domain/metadefs.ts';
import { nowTimestamp } from '../../domain/time.ts';

export const TAG_SORT_KEYS = ['id', 'name', 'created_at', 'updated_at'] as const;
export type TagSortKey = (typeof TAG_SORT_KEYS)[number];

type Executor = Transaction<Database> | null;
/** `updated: false` leaves updated_at empty, as glance-manage's loads do. */
type InsertOptions = { updated?: boolean };

function toObject(row: Omit<MetadefObjectsTable, 'id'> & { id: number }): MetadefObject {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    required: row.required ? (JSON.parse(row.required) as string[]) : [],
    properties: (JSON.parse(row.json_schema) as Record<string, PropertyDefinition>) ?? {},
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function toProperty(row: Omit<MetadefPropertiesTable, 'id'> & { id: number }): MetadefProperty {
  return { id: row.id, name: row.name, definition: JSON.parse(row.json_schema) as PropertyDefinition, created_at: row.created_at, updated_at: row.updated_at };
}

export interface ObjectFields {
  name: string;
  description: string | null;
  required: string[];
  properties: Record<string, PropertyDefinition>;
}

/** The objects, properties and tags inside namespaces. */
export class MetadefContentsRepo {
  constructor(private readonly db: Db) {}

  private x(trx: Executor) {
    return trx ?? this.db.kysely;
  }

  /** By name: Glance's query has no order, and its unique (namespace, name) index gives it that one. */
  async objects(namespaceId: number, trx: Executor = null): Promise<MetadefObject[]> {
    return (await this.x(trx).selectFrom('metadef_objects').selectAll().where('namespace_id', '=', namespaceId).orderBy('name').execute()).map(toObject);
  }

  async object(namespaceId: number, name: string, trx: Executor = null): Promise<MetadefObject | null> {
    const row = await this.x(trx).selectFrom('metadef_objects').selectAll().where('namespace_id', '=', namespaceId).where('name', '=', name).executeTakeFirst();
    return row ? toObject(row) : null;
  }

  async insertObject(namespaceId: number, fields: ObjectFields, trx: Executor = null, opts: InsertOptions = {}): Promise<MetadefObject> {
    const now = nowTimestamp();
    const row = {
      namespace_id: namespaceId,
      name: fields.name,
      description: fields.description,
      required: JSON.stringify(fields.required),
      json_schema: JSON.stringify(fields.properties),
      created_at: now,
      updated_at: opts.updated === false ? null : now,
    };
    const id = await insertReturningId(this.db.engine, this.x(trx).insertInto('metadef_objects').values(row));
    return toObject({ ...row, id });
  }

  async updateObject(id: number, fields: ObjectFields, trx: Executor = null): Promise<void> {
    await this.x(trx)
      .updateTable('metadef_objects')
      .set({
        name: fields.name,
        description: fields.description,
        required: JSON.stringify(fields.required),
        json_schema: JSON.stringify(fields.properties),
        updated_at: nowTimestamp(),
      })
      .where('id', '=', id)
      .execute();
  }

  /** By name, as objects(). */
  async properties(namespaceId: number, trx: Executor = null): Promise<MetadefProperty[]> {
    return (await this.x(trx).selectFrom('metadef_properties').selectAll().where('namespace_id', '=', namespaceId).orderBy('name').execute()).map(toProperty);
  }

  async property(namespaceId: number, name: string, trx: Executor = null): Promise<MetadefProperty | null> {
    const row = await this.x(trx)
      .selectFrom('metadef_properties')
      .selectAll()
      .where('namespace_id', '=', namespaceId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? toProperty(row) : null;
  }

  async insertProperty(
    namespaceId: number,
    name: string,
    definition: PropertyDefinition,
    trx: Executor = null,
    opts: InsertOptions = {},
  ): Promise<MetadefProperty> {
    const now = nowTimestamp();
    const row = { namespace_id: namespaceId, name, json_schema: JSON.stringify(definition), created_at: now, updated_at: opts.updated === false ? null : now };
    const id = await insertReturningId(this.db.engine, this.x(trx).insertInto('metadef_properties').values(row));
    return toProperty({ ...row, id });
  }

  async updateProperty(id: number, name: string, definition: PropertyDefinition, trx: Executor = null): Promise<void> {
    await this.x(trx)
      .updateTable('metadef_properties')
      .set({ name, json_schema: JSON.stringify(definition), updated_at: nowTimestamp() })
      .where('id', '=', id)
      .execute();
  }

  async tags(
    namespaceId: number,
    q: { sortKey: TagSortKey; sortDir: 'asc' | 'desc'; limit?: number; marker?: MetadefTag } = { sortKey: 'created_at', sortDir: 'desc' },
  ): Promise<MetadefTag[]> {
    const keys = [...new Set<TagSortKey>([q.sortKey, 'created_at', 'id'])];
    let query = this.db.kysely.selectFrom('metadef_tags').select(['id', 'name', 'created_at', 'updated_at']).where('namespace_id', '=', namespaceId);
    if (q.marker) {
      // Tags a file loaded have no updated_at: NULL sorts lowest on every engine, as in the other lists.
      const marker = q.marker as unknown as Record<string, unknown>;
      query = query.where((eb) =>
        afterMarker(
          eb,
          keys.map((column) => ({ column, dir: q.sortDir })),
          (column) => marker[column],
        ),
      );
    }
    for (const key of keys) query = query.orderBy(orderNullsLow(this.db.engine, key, q.sortDir));
    if (q.limit !== undefined) query = query.limit(q.limit);
    return query.execute();
  }

  /** A tag by name, whatever its case (tag names are unique per namespace regardless of case). */
  async tag(namespaceId: number, name: string, trx: Executor = null): Promise<MetadefTag | null> {
    return (
      (await this.x(trx)
        .selectFrom('metadef_tags')
        .select(['id', 'name', 'created_at', 'updated_at'])
        .where('namespace_id', '=', namespaceId)
        .where(sql<boolean>`lower(name) = lower(${name})`)
        .executeTakeFirst()) ?? null
    );
  }

  async insertTag(namespaceId: number, name: string, trx: Executor = null, opts: InsertOptions = {}): Promise<MetadefTag> {
    const now = nowTimestamp();
    const row = { namespace_id: namespaceId, name, created_at: now, updated_at: opts.updated === false ? null : now };
    const id = await insertReturningId(this.db.engine, this.x(trx).insertInto('metadef_tags').values(row));
    return { id, name, created_at: row.created_at, updated_at: row.updated_at };
  }

  async renameTag(id: number, name: string, trx: Executor = null): Promise<void> {
    await this.x(trx).updateTable('metadef_tags').set({ name, updated_at: nowTimestamp() }).where('id', '=', id).execute();
  }

  async deleteOne(table: 'metadef_objects' | 'metadef_properties' | 'metadef_tags', id: number): Promise<void> {
    await this.db.kysely.deleteFrom(table).where('id', '=', id).execute();
  }

  async deleteAll(table: 'metadef_objects' | 'metadef_properties' | 'metadef_tags', namespaceId: number, trx: Executor = null): Promise<void> {
    const remove = () => this.x(trx).deleteFrom(table).where('namespace_id', '=', namespaceId).execute();
    // Within a transaction, its owner retries the whole of it.
    await (trx ? remove() : retryOnDeadlock(remove));
  }
}
