import { sql, type InsertQueryBuilder, type InsertResult, type RawBuilder } from 'kysely';
import type { Engine } from './connection.ts';
import type { Database } from './schema.ts';

type TableWithId = 'metadef_namespaces' | 'metadef_objects' | 'metadef_properties' | 'metadef_resource_types' | 'metadef_tags';

// The few SQL spellings that differ between the engines; everything else is Kysely's common SQL.

/**
 * ORDER BY with NULL as the smallest value (first ascending, last descending), which keyset pagination
 * assumes. MySQL sorts NULL that way already and has no NULLS FIRST/LAST.
 */
export function orderNullsLow(engine: Engine, column: string, dir: 'asc' | 'desc'): RawBuilder<unknown> {
  if (engine === 'mysql') return sql`${sql.ref(column)} ${sql.raw(dir)}`;
  return sql`${sql.ref(column)} ${sql.raw(dir === 'asc' ? 'asc nulls first' : 'desc nulls last')}`;
}

/** A number compared as a 64-bit integer, whatever the type of the column it meets. */
export function int64(engine: Engine, value: number): RawBuilder<number> {
  return engine === 'mysql' ? sql<number>`cast(${value} as signed)` : sql<number>`cast(${value} as bigint)`;
}

/**
 * Runs an insert into a table with an auto-increment `id` and returns the new id: RETURNING where the
 * engine has it in Kysely, the driver's insert id on MySQL.
 */
export async function insertReturningId<T extends TableWithId>(engine: Engine, insert: InsertQueryBuilder<Database, T, InsertResult>): Promise<number> {
  if (engine === 'mysql') return Number((await insert.executeTakeFirstOrThrow()).insertId);
  // Every T has an integer id; Kysely cannot see that through the type parameter.
  const withId = insert as unknown as InsertQueryBuilder<Database, 'metadef_tags', InsertResult>;
  return (await withId.returning('id').executeTakeFirstOrThrow()).id;
}
