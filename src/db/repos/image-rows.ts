import { jsonArrayFrom as pgJsonArrayFrom } from 'kysely/helpers/postgres';
import { jsonArrayFrom as sqliteJsonArrayFrom } from 'kysely/helpers/sqlite';
import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { Database, ImageLocationsTable, ImagesTable } from '../schema.ts';
import type { Db } from '../connection.ts';
import type { Image, ImageLocation, ImageStatus, Visibility } from '../../domain/image.ts';

// Image rows and the image aggregate: the mapping both ways, and the one query that reads an image with
// its relations.

type Row = ImagesTable;

export function rowToImage(row: Row): Image {
  return {
    id: row.id,
    name: row.name,
    status: row.status as ImageStatus,
    visibility: row.visibility as Visibility,
    protected: Boolean(row.protected),
    os_hidden: Boolean(row.os_hidden),
    checksum: row.checksum,
    os_hash_algo: row.os_hash_algo,
    os_hash_value: row.os_hash_value,
    owner: row.owner,
    size: row.size === null ? null : Number(row.size),
    virtual_size: row.virtual_size === null ? null : Number(row.virtual_size),
    container_format: row.container_format,
    disk_format: row.disk_format,
    min_ram: Number(row.min_ram),
    min_disk: Number(row.min_disk),
    created_at: row.created_at,
    updated_at: row.updated_at,
    properties: {},
    tags: [],
    locations: [],
  };
}

/** The columns of an image's locations its aggregate carries (withRelations()). */
const LOCATION_COLUMNS = ['id', 'image_id', 'url', 'metadata', 'status', 'position', 'created_at', 'updated_at'] as const;

/** SQLite and MySQL hand the JSON arrays back as text, PostgreSQL already parsed. */
function jsonColumn<T>(value: unknown): T[] {
  return (typeof value === 'string' ? JSON.parse(value) : (value ?? [])) as T[];
}

/** An image row with its relations as JSON array columns (withRelations()). */
export type RowWithRelations = Row & { rel_properties: unknown; rel_tags: unknown; rel_locations: unknown };

function rowWithRelationsToImage(row: RowWithRelations): Image {
  const image = rowToImage(row);
  for (const p of jsonColumn<{ name: string; value: string }>(row.rel_properties)) image.properties[p.name] = p.value;
  for (const t of jsonColumn<{ value: string }>(row.rel_tags)) image.tags.push(t.value);
  for (const l of jsonColumn<ImageLocationsTable>(row.rel_locations)) image.locations.push(toLocation(l));
  return image;
}

/**
 * The images of rows read withRelations(). MariaDB cuts an aggregate at max_allowed_packet (16 MiB by
 * default), which an image's properties can pass (128 values of 64 KiB, escaped): the cut text is no
 * JSON, and that image's relations are read again, one plain query each.
 */
export async function imagesFromRows(k: Kysely<Database>, rows: readonly RowWithRelations[]): Promise<Image[]> {
  const images: Image[] = [];
  for (const row of rows) {
    try {
      images.push(rowWithRelationsToImage(row));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      images.push(rowWithRelationsToImage({ ...row, ...(await relationsOf(k, row.id)) }));
    }
  }
  return images;
}

async function relationsOf(k: Kysely<Database>, imageId: string): Promise<Pick<RowWithRelations, 'rel_properties' | 'rel_tags' | 'rel_locations'>> {
  return {
    rel_properties: await k
      .selectFrom('image_properties')
      .select(['name', 'value'])
      .where('image_id', '=', imageId)
      .orderBy('position')
      .orderBy('name')
      .execute(),
    rel_tags: await k.selectFrom('image_tags').select('value').where('image_id', '=', imageId).execute(),
    rel_locations: await k
      .selectFrom('image_locations')
      .select(LOCATION_COLUMNS)
      .where('image_id', '=', imageId)
      .where('status', '=', 'active')
      .orderBy('position')
      .execute(),
  };
}

export function toLocation(row: ImageLocationsTable): ImageLocation {
  return { id: row.id, url: row.url, metadata: JSON.parse(row.metadata), status: row.status };
}

export function imageToRow(image: Image): Omit<Row, 'deleted' | 'deleted_at' | 'reserved_bytes' | 'staged_bytes'> {
  return {
    id: image.id,
    name: image.name,
    status: image.status,
    visibility: image.visibility,
    protected: image.protected ? 1 : 0,
    os_hidden: image.os_hidden ? 1 : 0,
    checksum: image.checksum,
    os_hash_algo: image.os_hash_algo,
    os_hash_value: image.os_hash_value,
    owner: image.owner,
    size: image.size,
    virtual_size: image.virtual_size,
    container_format: image.container_format,
    disk_format: image.disk_format,
    min_ram: image.min_ram,
    min_disk: image.min_disk,
    created_at: image.created_at,
    updated_at: image.updated_at,
  };
}

/** The columns whose value differs between two rows of the same image. */
export function changedColumns(before: Record<string, unknown>, after: Record<string, unknown>): Partial<Row> {
  return Object.fromEntries(Object.entries(after).filter(([key, value]) => key !== 'updated_at' && before[key] !== value)) as Partial<Row>;
}

/**
 * The image rows with their properties, tags and active locations, in one query (one round trip per
 * image or page, where separate queries cost four): each relation as a JSON array column.
 */
export function withRelations<O extends Row>(db: Db, q: SelectQueryBuilder<Database, 'images', O>) {
  if (db.engine === 'mysql') return withRelationsMysql(q);
  const arrayFrom = db.engine === 'postgresql' ? pgJsonArrayFrom : sqliteJsonArrayFrom;
  return q.select((eb) => [
    arrayFrom(
      eb.selectFrom('image_properties as p').select(['p.name', 'p.value']).whereRef('p.image_id', '=', 'images.id').orderBy('p.position').orderBy('p.name'),
    ).as('rel_properties'),
    arrayFrom(eb.selectFrom('image_tags as t').select(['t.value']).whereRef('t.image_id', '=', 'images.id')).as('rel_tags'),
    arrayFrom(
      eb
        .selectFrom('image_locations as l')
        .select(['l.id', 'l.image_id', 'l.url', 'l.metadata', 'l.status', 'l.position', 'l.created_at', 'l.updated_at'])
        .whereRef('l.image_id', '=', 'images.id')
        .where('l.status', '=', 'active')
        .orderBy('l.position'),
    ).as('rel_locations'),
  ]);
}

/**
 * The same on MySQL/MariaDB, whose derived tables cannot see the outer row (so Kysely's MySQL helper does
 * not apply): one aggregate per relation, ordered inside the aggregate.
 */
function withRelationsMysql<O extends Row>(q: SelectQueryBuilder<Database, 'images', O>) {
  const arrayOf = (table: string, columns: readonly string[], where = sql``, orderBy = sql``) => {
    const fields = sql.join(columns.map((c) => sql`${sql.lit(c)}, ${sql.ref(`r.${c}`)}`));
    return sql<unknown>`(select coalesce(json_arrayagg(json_object(${fields}) ${orderBy}), '[]') from ${sql.table(table)} as r where r.image_id = images.id ${where})`;
  };
  return q.select([
    arrayOf('image_properties', ['name', 'value'], sql``, sql`order by r.position, r.name`).as('rel_properties'),
    arrayOf('image_tags', ['value']).as('rel_tags'),
    arrayOf('image_locations', LOCATION_COLUMNS, sql`and r.status = 'active'`, sql`order by r.position`).as('rel_locations'),
  ]);
}
