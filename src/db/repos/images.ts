import { type ExpressionBuilder, type Expression, type SqlBool, type Transaction, sql } from 'kysely';
import type { Database, ImagesTable } from '../schema.ts';
import type { Db } from '../connection.ts';
import type { Image, ImageLocation, ImageStatus, Visibility } from '../../domain/image.ts';
import { nowTimestamp } from '../../domain/time.ts';

export const IMPORT_LOCK = 'os_glance_import_task';

export type ImageColumn =
  | 'id' | 'name' | 'status' | 'visibility' | 'checksum' | 'os_hash_algo' | 'os_hash_value' | 'owner' | 'size'
  | 'virtual_size' | 'container_format' | 'disk_format' | 'min_ram' | 'min_disk' | 'created_at' | 'updated_at'
  | 'protected' | 'os_hidden';

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

export interface SortKey { key: 'name' | 'status' | 'container_format' | 'disk_format' | 'size' | 'id' | 'created_at' | 'updated_at'; dir: 'asc' | 'desc' }

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

type Row = ImagesTable;
type EB = ExpressionBuilder<Database, 'images'>;

function rowToImage(row: Row): Image {
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

function imageToRow(image: Image): Omit<Row, 'deleted' | 'deleted_at' | 'reserved_bytes'> {
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

/** Booleans are stored as 0/1; comparisons on them must use numbers. */
function toStored(column: ImageColumn, value: string | number | boolean | null): string | number | null {
  if (column === 'protected' || column === 'os_hidden') return value === true || value === 'true' || value === 1 ? 1 : 0;
  return typeof value === 'boolean' ? Number(value) : value;
}

// NULL sorts as the smallest value on both engines, so keyset comparisons below can assume it.
function nullsClause(dir: 'asc' | 'desc') {
  return dir === 'asc' ? sql.raw('asc nulls first') : sql.raw('desc nulls last');
}

function after(eb: EB, column: SortKey['key'], dir: 'asc' | 'desc', value: unknown): Expression<SqlBool> {
  const ref = eb.ref(`images.${column}`);
  if (dir === 'asc') return value === null ? eb(ref, 'is not', null) : eb(ref, '>', value as never);
  return value === null ? eb.lit(false) : eb.or([eb(ref, '<', value as never), eb(ref, 'is', null)]);
}

function same(eb: EB, column: SortKey['key'], value: unknown): Expression<SqlBool> {
  const ref = eb.ref(`images.${column}`);
  return value === null ? eb(ref, 'is', null) : eb(ref, '=', value as never);
}

export class ImagesRepo {
  constructor(private readonly db: Db) {}

  private get k() { return this.db.kysely; }

  /** True when the id was ever used, deleted images included (Glance refuses to reuse them). */
  async idExists(id: string): Promise<boolean> {
    const row = await this.k.selectFrom('images').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined;
  }

  async insert(image: Image): Promise<void> {
    await this.k.transaction().execute(async (trx) => {
      await trx.insertInto('images').values({ ...imageToRow(image), deleted: 0, deleted_at: null }).execute();
      await this.writeProperties(trx, image.id, image.properties);
      await this.writeTags(trx, image.id, image.tags);
    });
  }

  async get(id: string): Promise<Image | null> {
    const row = await this.k.selectFrom('images').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!row) return null;
    const [image] = await this.withRelations([rowToImage(row)]);
    return image;
  }

  /**
   * Saves the whole aggregate (row, properties, tags) in one transaction. With `expectStatus`, the write
   * only happens while the stored status still is that one (compare-and-set); returns false otherwise.
   */
  async save(image: Image, opts: { expectStatus?: ImageStatus; touch?: boolean } = {}): Promise<boolean> {
    if (opts.touch !== false) image.updated_at = nowTimestamp();
    return this.k.transaction().execute(async (trx) => {
      let q = trx.updateTable('images').set(imageToRow(image)).where('id', '=', image.id).where('deleted', '=', 0);
      if (opts.expectStatus) q = q.where('status', '=', opts.expectStatus);
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await trx.deleteFrom('image_properties').where('image_id', '=', image.id).execute();
      await this.writeProperties(trx, image.id, image.properties);
      await trx.deleteFrom('image_tags').where('image_id', '=', image.id).execute();
      await this.writeTags(trx, image.id, image.tags);
      return true;
    });
  }

  /** Compare-and-set of status plus some columns, without touching properties or tags. */
  async updateFields(id: string, expectStatus: ImageStatus | ImageStatus[] | null, fields: Partial<Omit<Row, 'id'>>): Promise<boolean> {
    const expected = expectStatus === null ? null : Array.isArray(expectStatus) ? expectStatus : [expectStatus];
    if (expected?.length === 0) return false;
    let q = this.k.updateTable('images').set({ ...fields, updated_at: nowTimestamp() }).where('id', '=', id).where('deleted', '=', 0);
    if (expected) q = q.where('status', 'in', expected);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async setProperty(id: string, name: string, value: string | null): Promise<void> {
    await this.k.transaction().execute(async (trx) => {
      await trx.deleteFrom('image_properties').where('image_id', '=', id).where('name', '=', name).execute();
      if (value !== null) await trx.insertInto('image_properties').values({ image_id: id, name, value }).execute();
    });
  }

  /** Takes the import lock (`os_glance_import_task`) atomically: false when any task already holds it. */
  async takeImportLock(id: string, taskId: string): Promise<boolean> {
    try {
      await this.k.insertInto('image_properties').values({ image_id: id, name: IMPORT_LOCK, value: taskId }).execute();
      return true;
    } catch {
      return false;
    }
  }

  /** Drops the lock only if `taskId` still holds it (compare by value); true when it did. */
  async releaseImportLock(id: string, taskId: string): Promise<boolean> {
    const res = await this.k.deleteFrom('image_properties').where('image_id', '=', id).where('name', '=', IMPORT_LOCK)
      .where('value', '=', taskId).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  async markDeleted(id: string, status: 'deleted' | 'pending_delete' = 'deleted'): Promise<boolean> {
    const now = nowTimestamp();
    return this.k.transaction().execute(async (trx) => {
      const res = await trx.updateTable('images')
        .set({ status, deleted: status === 'deleted' ? 1 : 0, deleted_at: now, updated_at: now })
        .where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      if (status === 'deleted') {
        await trx.deleteFrom('image_properties').where('image_id', '=', id).execute();
        await trx.deleteFrom('image_tags').where('image_id', '=', id).execute();
        await trx.deleteFrom('image_members').where('image_id', '=', id).execute();
        await trx.updateTable('image_locations').set({ status: 'deleted', updated_at: now }).where('image_id', '=', id).execute();
      }
      return true;
    });
  }

  /** Adds a location; adding the same url again (a resumed import) returns the existing one. */
  async addLocation(imageId: string, url: string, metadata: Record<string, unknown>): Promise<ImageLocation> {
    const existing = await this.k.selectFrom('image_locations').selectAll().where('image_id', '=', imageId).where('url', '=', url)
      .where('status', '=', 'active').executeTakeFirst();
    if (existing) return { id: existing.id, url, metadata: JSON.parse(existing.metadata), status: 'active' };
    const now = nowTimestamp();
    const max = await this.k.selectFrom('image_locations').select((eb) => eb.fn.max('position').as('p'))
      .where('image_id', '=', imageId).executeTakeFirst();
    const location = { id: crypto.randomUUID(), url, metadata, status: 'active' };
    await this.k.insertInto('image_locations').values({
      id: location.id, image_id: imageId, position: Number(max?.p ?? -1) + 1, url,
      metadata: JSON.stringify(metadata), status: 'active', created_at: now, updated_at: now,
    }).execute();
    return location;
  }

  /**
   * Makes stored data visible: `from` (saving, or importing) → active with the data's fields and its
   * location, in one transaction, only while the image is still in `from` (false when it was deleted).
   */
  async activateWithData(id: string, fields: Partial<Omit<Row, 'id'>>, location: { url: string; metadata: Record<string, unknown> },
    from: ImageStatus = 'saving'): Promise<boolean> {
    const now = nowTimestamp();
    return this.k.transaction().execute(async (trx) => {
      const res = await trx.updateTable('images').set({ ...fields, status: 'active', updated_at: now })
        .where('id', '=', id).where('deleted', '=', 0).where('status', '=', from).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await trx.insertInto('image_locations').values({
        id: crypto.randomUUID(), image_id: id, position: 0, url: location.url, metadata: JSON.stringify(location.metadata),
        status: 'active', created_at: now, updated_at: now,
      }).execute();
      return true;
    });
  }

  /** Images left in a transient upload state by a process that stopped (restart recovery). */
  async idsInStatus(status: ImageStatus): Promise<string[]> {
    const rows = await this.k.selectFrom('images').select('id').where('status', '=', status).where('deleted', '=', 0).execute();
    return rows.map((r) => r.id);
  }

  async removeLocation(locationId: string): Promise<void> {
    await this.k.updateTable('image_locations').set({ status: 'deleted', updated_at: nowTimestamp() }).where('id', '=', locationId).execute();
  }

  /** Locations whose data may still need removing from stores (deleted images, failed writes). */
  async locationsOfDeletedImages(limit: number): Promise<Array<{ id: string; url: string; metadata: string }>> {
    return this.k.selectFrom('image_locations').select(['id', 'url', 'metadata']).where('status', '=', 'deleted').limit(limit).execute();
  }

  async purgeLocation(locationId: string): Promise<void> {
    await this.k.deleteFrom('image_locations').where('id', '=', locationId).execute();
  }

  async list(query: ListQuery): Promise<Image[]> {
    let q = this.k.selectFrom('images').selectAll('images')
      .where('images.deleted', '=', 0)
      .where('images.status', 'not in', ['deleted', 'killed']);

    q = q.where((eb) => this.scopeCondition(eb, query.scope));
    q = q.where('images.os_hidden', '=', query.osHidden ? 1 : 0);

    for (const cond of query.conditions) {
      q = q.where((eb) => this.columnCondition(eb, cond));
    }
    for (const prop of query.properties) {
      q = q.where((eb) => eb.exists(eb.selectFrom('image_properties as p').select('p.name')
        .whereRef('p.image_id', '=', 'images.id').where('p.name', '=', prop.name).where('p.value', '=', prop.value)));
    }
    for (const tag of query.tags) {
      q = q.where((eb) => eb.exists(eb.selectFrom('image_tags as t').select('t.value')
        .whereRef('t.image_id', '=', 'images.id').where('t.value', '=', tag)));
    }
    if (query.marker) {
      const marker = imageToRow(query.marker) as unknown as Record<string, unknown>;
      // Keyset paging: rows strictly after the marker in the full sort order.
      q = q.where((eb) => eb.or(query.sort.map((_, i) => eb.and([
        ...query.sort.slice(0, i).map((s) => same(eb, s.key, marker[s.key])),
        after(eb, query.sort[i].key, query.sort[i].dir, marker[query.sort[i].key]),
      ]))));
    }
    for (const s of query.sort) q = q.orderBy(sql`${sql.ref(`images.${s.key}`)} ${nullsClause(s.dir)}`);
    const rows = await q.limit(query.limit).execute();
    return this.withRelations(rows.map(rowToImage));
  }

  private scopeCondition(eb: EB, scope: ListScope): Expression<SqlBool> {
    const { isAdmin, projectId, visibility, memberStatus } = scope;
    const vis = (v: Visibility) => eb('images.visibility', '=', v);
    const owned = projectId === null ? eb.lit(false) : eb('images.owner', '=', projectId);
    if (isAdmin) {
      if (visibility === null) return eb.or([eb('images.visibility', '!=', 'community'), owned]);
      if (visibility === 'all') return eb.lit(true);
      return vis(visibility);
    }
    const sharedWithMe = projectId === null ? eb.lit(false) : eb.and([
      vis('shared'),
      eb.exists(eb.selectFrom('image_members as m').select('m.id')
        .whereRef('m.image_id', '=', 'images.id').where('m.member', '=', projectId)
        .$if(memberStatus !== 'all', (qb) => qb.where('m.status', '=', memberStatus))),
    ]);
    switch (visibility) {
      case null: return eb.or([vis('public'), owned, sharedWithMe]);
      case 'all': return eb.or([vis('public'), vis('community'), owned, sharedWithMe]);
      case 'public': return vis('public');
      case 'community': return vis('community');
      case 'private': return eb.and([vis('private'), owned]);
      case 'shared': return eb.or([eb.and([vis('shared'), owned]), sharedWithMe]);
    }
  }

  private columnCondition(eb: EB, cond: ColumnCondition): Expression<SqlBool> {
    const ref = eb.ref(`images.${cond.column}`);
    // Numbers are compared as BIGINT: PostgreSQL would otherwise read them as the column's 32-bit type and
    // fail on larger values (min_ram=3000000000), where SQLite just compares.
    const values = cond.values.map((v) => {
      const stored = toStored(cond.column, v);
      return typeof stored === 'number' ? sql`cast(${stored} as bigint)` : stored;
    });
    const [v] = values;
    switch (cond.op) {
      case 'in': return values.length ? eb(ref, 'in', values as never[]) : eb.lit(false);
      case 'eq': return v === null ? eb(ref, 'is', null) : eb(ref, '=', v as never);
      case 'neq': return v === null ? eb(ref, 'is not', null) : eb.or([eb(ref, '!=', v as never), eb(ref, 'is', null)]);
      case 'gt': return eb(ref, '>', v as never);
      case 'gte': return eb(ref, '>=', v as never);
      case 'lt': return eb(ref, '<', v as never);
      case 'lte': return eb(ref, '<=', v as never);
      case 'outside': return eb.or([eb(ref, '<', v as never), eb(ref, '>=', values[1] as never)]);
    }
  }

  private async withRelations(images: Image[]): Promise<Image[]> {
    if (images.length === 0) return images;
    const ids = images.map((i) => i.id);
    const byId = new Map(images.map((i) => [i.id, i]));
    const [props, tags, locations] = await Promise.all([
      this.k.selectFrom('image_properties').selectAll().where('image_id', 'in', ids).execute(),
      this.k.selectFrom('image_tags').selectAll().where('image_id', 'in', ids).execute(),
      this.k.selectFrom('image_locations').selectAll().where('image_id', 'in', ids).where('status', '!=', 'deleted')
        .orderBy('position').execute(),
    ]);
    for (const p of props) byId.get(p.image_id)!.properties[p.name] = p.value;
    for (const t of tags) byId.get(t.image_id)!.tags.push(t.value);
    for (const l of locations) {
      byId.get(l.image_id)!.locations.push({ id: l.id, url: l.url, metadata: JSON.parse(l.metadata), status: l.status });
    }
    return images;
  }

  private async writeProperties(trx: Transaction<Database>, imageId: string, properties: Record<string, string>): Promise<void> {
    const rows = Object.entries(properties).map(([name, value]) => ({ image_id: imageId, name, value }));
    if (rows.length) await trx.insertInto('image_properties').values(rows).execute();
  }

  private async writeTags(trx: Transaction<Database>, imageId: string, tags: string[]): Promise<void> {
    const rows = [...new Set(tags)].map((value) => ({ image_id: imageId, value }));
    if (rows.length) await trx.insertInto('image_tags').values(rows).execute();
  }
}
