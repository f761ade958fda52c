import { type ExpressionBuilder, type Expression, type SqlBool } from 'kysely';
import type { Database } from '../schema.ts';
import type { Db, Engine } from '../connection.ts';
import { int64, orderNullsLow } from '../dialect.ts';
import { afterMarker } from '../keyset.ts';
import type { Image, Visibility } from '../../domain/image.ts';
import { imagesFromRows, imageToRow, withRelations } from './image-rows.ts';

// GET /v2/images as one query: visibility scopes, column, property and tag filters, sorting, and keyset
// paging after a marker.

export type ImageColumn =
  | 'id'
  | 'name'
  | 'status'
  | 'visibility'
  | 'checksum'
  | 'os_hash_algo'
  | 'os_hash_value'
  | 'owner'
  | 'size'
  | 'virtual_size'
  | 'container_format'
  | 'disk_format'
  | 'min_ram'
  | 'min_disk'
  | 'created_at'
  | 'updated_at'
  | 'protected'
  | 'os_hidden';

/** `outside`: values [low, high): the column is below low or at/above high. */
export type CompareOp = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'outside';

export interface ColumnCondition {
  column: ImageColumn;
  op: CompareOp;
  values: Array<string | number | boolean | null>;
}

export interface ListScope {
  isAdmin: boolean;
  projectId: string | null;
  /** The `visibility` query parameter, or null when absent. */
  visibility: Visibility | 'all' | null;
  memberStatus: 'pending' | 'accepted' | 'rejected' | 'all';
}

export interface SortKey {
  key: 'name' | 'status' | 'container_format' | 'disk_format' | 'size' | 'id' | 'created_at' | 'updated_at';
  dir: 'asc' | 'desc';
}

export interface ListQuery {
  conditions: ColumnCondition[];
  properties: Array<{ name: string; value: string }>;
  tags: string[];
  scope: ListScope;
  /** false (default): hidden images are left out; true: only hidden ones. */
  osHidden: boolean;
  sort: SortKey[];
  limit: number;
  marker: Image | null;
}

type EB = ExpressionBuilder<Database, 'images'>;

/** Booleans are stored as 0/1; comparisons on them must use numbers. */
function toStored(column: ImageColumn, value: string | number | boolean | null): string | number | null {
  if (column === 'protected' || column === 'os_hidden') return value === true || value === 'true' || value === 1 ? 1 : 0;
  return typeof value === 'boolean' ? Number(value) : value;
}

export async function listImages(db: Db, query: ListQuery): Promise<Image[]> {
  let q = db.kysely.selectFrom('images').selectAll('images').where('images.deleted', '=', 0).where('images.status', 'not in', ['deleted', 'killed']);

  q = q.where((eb) => scopeCondition(eb, query.scope));
  q = q.where('images.os_hidden', '=', query.osHidden ? 1 : 0);

  for (const cond of query.conditions) {
    q = q.where((eb) => columnCondition(eb, cond, db.engine));
  }
  for (const prop of query.properties) {
    q = q.where((eb) =>
      eb.exists(
        eb
          .selectFrom('image_properties as p')
          .select('p.name')
          .whereRef('p.image_id', '=', 'images.id')
          .where('p.name', '=', prop.name)
          .where('p.value', '=', prop.value),
      ),
    );
  }
  for (const tag of query.tags) {
    q = q.where((eb) => eb.exists(eb.selectFrom('image_tags as t').select('t.value').whereRef('t.image_id', '=', 'images.id').where('t.value', '=', tag)));
  }
  if (query.marker) {
    const marker = imageToRow(query.marker) as unknown as Record<string, unknown>;
    // Keyset paging: rows strictly after the marker in the full sort order.
    const keys = query.sort.map((s) => ({ column: `images.${s.key}`, dir: s.dir }));
    q = q.where((eb) => afterMarker(eb, keys, (column) => marker[column.slice('images.'.length)]));
  }
  // NULL sorts as the smallest value on every engine, so the keyset comparisons can assume it.
  for (const s of query.sort) q = q.orderBy(orderNullsLow(db.engine, `images.${s.key}`, s.dir));
  return imagesFromRows(db.kysely, await withRelations(db, q.limit(query.limit)).execute());
}

function scopeCondition(eb: EB, scope: ListScope): Expression<SqlBool> {
  const { isAdmin, projectId, visibility, memberStatus } = scope;
  const vis = (v: Visibility) => eb('images.visibility', '=', v);
  const owned = projectId === null ? eb.lit(false) : eb('images.owner', '=', projectId);
  if (isAdmin) {
    if (visibility === null) return eb.or([eb('images.visibility', '!=', 'community'), owned]);
    if (visibility === 'all') return eb.lit(true);
    return vis(visibility);
  }
  const sharedWithMe =
    projectId === null
      ? eb.lit(false)
      : eb.and([
          vis('shared'),
          eb.exists(
            eb
              .selectFrom('image_members as m')
              .select('m.id')
              .whereRef('m.image_id', '=', 'images.id')
              .where('m.member', '=', projectId)
              .$if(memberStatus !== 'all', (qb) => qb.where('m.status', '=', memberStatus)),
          ),
        ]);
  switch (visibility) {
    case null:
      return eb.or([vis('public'), owned, sharedWithMe]);
    case 'all':
      return eb.or([vis('public'), vis('community'), owned, sharedWithMe]);
    case 'public':
      return vis('public');
    case 'community':
      return vis('community');
    case 'private':
      return eb.and([vis('private'), owned]);
    case 'shared':
      return eb.or([eb.and([vis('shared'), owned]), sharedWithMe]);
    default:
      // A value Glance's API never checked (the first of several; it checks the last): its database
      // filter on it matches nothing.
      return eb('images.visibility', '=', String(visibility));
  }
}

function columnCondition(eb: EB, cond: ColumnCondition, engine: Engine): Expression<SqlBool> {
  const ref = eb.ref(`images.${cond.column}`);
  // Numbers are compared as BIGINT: PostgreSQL would otherwise read them as the column's 32-bit type and
  // fail on larger values (min_ram=3000000000), where SQLite just compares.
  const values = cond.values.map((v) => {
    const stored = toStored(cond.column, v);
    return typeof stored === 'number' ? int64(engine, stored) : stored;
  });
  const [v] = values;
  switch (cond.op) {
    case 'in':
      return values.length ? eb(ref, 'in', values as never[]) : eb.lit(false);
    case 'eq':
      return v === null ? eb(ref, 'is', null) : eb(ref, '=', v as never);
    case 'neq':
      return v === null ? eb(ref, 'is not', null) : eb.or([eb(ref, '!=', v as never), eb(ref, 'is', null)]);
    case 'gt':
      return eb(ref, '>', v as never);
    case 'gte':
      return eb(ref, '>=', v as never);
    case 'lt':
      return eb(ref, '<', v as never);
    case 'lte':
      return eb(ref, '<=', v as never);
    case 'outside':
      return eb.or([eb(ref, '<', v as never), eb(ref, '>=', values[1] as never)]);
  }
}
