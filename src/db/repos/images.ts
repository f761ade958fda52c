import { type ExpressionBuilder, type Expression, type SelectQueryBuilder, type SqlBool, type Transaction, sql } from 'kysely';
import { jsonArrayFrom as pgJsonArrayFrom } from 'kysely/helpers/postgres';
import { jsonArrayFrom as sqliteJsonArrayFrom } from 'kysely/helpers/sqlite';
import type { Database, ImageLocationsTable, ImagesTable } from '../schema.ts';
import type { Db } from '../connection.ts';
import { checkStatusChange, type Image, type ImageLocation, type ImageStatus, type StatusChange, type Visibility } from '../../domain/image.ts';
import { nowTimestamp } from '../../domain/time.ts';

export const IMPORT_LOCK = 'os_glance_import_task';

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

type Row = ImagesTable;

/** Column writes: without a status, or with a status change made in the domain (domain/image.ts). */
export type ImageFieldUpdate = (Partial<Omit<Row, 'id' | 'status'>> & { status?: never }) | (StatusChange & Partial<Omit<Row, 'id' | 'status'>>);
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

/** SQLite hands the JSON arrays back as text, PostgreSQL already parsed. */
function jsonColumn<T>(value: unknown): T[] {
  return (typeof value === 'string' ? JSON.parse(value) : (value ?? [])) as T[];
}

function rowWithRelationsToImage(row: Row & { rel_properties: unknown; rel_tags: unknown; rel_locations: unknown }): Image {
  const image = rowToImage(row);
  for (const p of jsonColumn<{ name: string; value: string }>(row.rel_properties)) image.properties[p.name] = p.value;
  for (const t of jsonColumn<{ value: string }>(row.rel_tags)) image.tags.push(t.value);
  for (const l of jsonColumn<ImageLocationsTable>(row.rel_locations)) image.locations.push(toLocation(l));
  return image;
}

function toLocation(row: ImageLocationsTable): ImageLocation {
  return { id: row.id, url: row.url, metadata: JSON.parse(row.metadata), status: row.status };
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

/** The columns whose value differs between two rows of the same image. */
function changedColumns(before: Record<string, unknown>, after: Record<string, unknown>): Partial<Row> {
  return Object.fromEntries(Object.entries(after).filter(([key, value]) => key !== 'updated_at' && before[key] !== value)) as Partial<Row>;
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

  private get k() {
    return this.db.kysely;
  }

  /** True when the id was ever used, deleted images included (Glance refuses to reuse them). */
  async idExists(id: string): Promise<boolean> {
    const row = await this.k.selectFrom('images').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined;
  }

  async insert(image: Image): Promise<void> {
    await this.k.transaction().execute(async (trx) => {
      await trx
        .insertInto('images')
        .values({ ...imageToRow(image), deleted: 0, deleted_at: null })
        .execute();
      await this.writeProperties(trx, image.id, image.properties);
      await this.writeTags(trx, image.id, image.tags);
    });
  }

  async get(id: string): Promise<Image | null> {
    const row = await this.withRelations(this.k.selectFrom('images').selectAll('images').where('id', '=', id).where('deleted', '=', 0)).executeTakeFirst();
    return row ? rowWithRelationsToImage(row) : null;
  }

  /**
   * Saves the image aggregate (row, properties, tags) in one transaction. With `original` (the image as
   * the caller read it), only what changed since is written, under the image's row lock: concurrent
   * saves that change different fields all keep their changes (no lost update), and `verify` sees the
   * result with everyone's committed changes before it commits (throw to refuse). Without `original`
   * the whole aggregate is replaced. With `expectStatus` the write only happens while the stored status
   * still is that one (compare-and-set); returns false otherwise, or when the image is gone.
   */
  async save(image: Image, opts: { expectStatus?: ImageStatus; touch?: boolean; original?: Image; verify?: (saved: Image) => void } = {}): Promise<boolean> {
    if (opts.touch !== false) image.updated_at = nowTimestamp();
    const { original } = opts;
    return this.k.transaction().execute(async (trx) => {
      const row = imageToRow(image);
      const columns = original ? changedColumns(imageToRow(original), row) : row;
      let q = trx
        .updateTable('images')
        .set({ ...columns, updated_at: image.updated_at })
        .where('id', '=', image.id)
        .where('deleted', '=', 0);
      if (opts.expectStatus) q = q.where('status', '=', opts.expectStatus);
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      if (!original) {
        await trx.deleteFrom('image_properties').where('image_id', '=', image.id).execute();
        await this.writeProperties(trx, image.id, image.properties);
        await trx.deleteFrom('image_tags').where('image_id', '=', image.id).execute();
        await this.writeTags(trx, image.id, image.tags);
        return true;
      }
      const before = original.properties;
      const changedKeys = [...new Set([...Object.keys(before), ...Object.keys(image.properties)])].filter((key) => before[key] !== image.properties[key]);
      if (changedKeys.length) await trx.deleteFrom('image_properties').where('image_id', '=', image.id).where('name', 'in', changedKeys).execute();
      await this.writeProperties(trx, image.id, Object.fromEntries(changedKeys.filter((k) => k in image.properties).map((k) => [k, image.properties[k]!])));
      const removedTags = original.tags.filter((t) => !image.tags.includes(t));
      if (removedTags.length) await trx.deleteFrom('image_tags').where('image_id', '=', image.id).where('value', 'in', removedTags).execute();
      const addedTags = [...new Set(image.tags.filter((t) => !original.tags.includes(t)))];
      if (addedTags.length) {
        await trx
          .insertInto('image_tags')
          .values(addedTags.map((value) => ({ image_id: image.id, value })))
          .onConflict((oc) => oc.columns(['image_id', 'value']).doNothing())
          .execute();
      }
      if (opts.verify) {
        const saved = await trx.selectFrom('images').selectAll().where('id', '=', image.id).executeTakeFirstOrThrow();
        const [props, tags] = await Promise.all([
          trx.selectFrom('image_properties').selectAll().where('image_id', '=', image.id).execute(),
          trx.selectFrom('image_tags').selectAll().where('image_id', '=', image.id).execute(),
        ]);
        opts.verify({ ...rowToImage(saved), properties: Object.fromEntries(props.map((p) => [p.name, p.value])), tags: tags.map((t) => t.value) });
      }
      return true;
    });
  }

  /** Compare-and-set of status plus some columns, without touching properties or tags. */
  async updateFields(id: string, expectStatus: ImageStatus | ImageStatus[] | null, fields: ImageFieldUpdate): Promise<boolean> {
    const expected = expectStatus === null ? null : Array.isArray(expectStatus) ? expectStatus : [expectStatus];
    if (fields.status !== undefined) checkStatusChange(expected, fields.status);
    if (expected?.length === 0) return false;
    let q = this.k
      .updateTable('images')
      .set({ ...fields, updated_at: nowTimestamp() })
      .where('id', '=', id)
      .where('deleted', '=', 0);
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
    const res = await this.k
      .deleteFrom('image_properties')
      .where('image_id', '=', id)
      .where('name', '=', IMPORT_LOCK)
      .where('value', '=', taskId)
      .executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  /**
   * Deletes the image (or marks it pending_delete) and, for `deleted`, queues the data of all its
   * locations for removal. Returns the queued locations with the status each had (a `pending` one is
   * a write still under way, which cleans up after itself), or null when the image was already gone.
   */
  async markDeleted(id: string, status: 'deleted' | 'pending_delete' = 'deleted'): Promise<ImageLocation[] | null> {
    const now = nowTimestamp();
    return this.k.transaction().execute(async (trx) => {
      if (!(await this.lockImage(trx, id, null, { status, deleted: status === 'deleted' ? 1 : 0, deleted_at: now }))) return null;
      if (status !== 'deleted') return [];
      await trx.deleteFrom('image_properties').where('image_id', '=', id).execute();
      await trx.deleteFrom('image_tags').where('image_id', '=', id).execute();
      await trx.deleteFrom('image_members').where('image_id', '=', id).execute();
      const queued = await trx.selectFrom('image_locations').selectAll().where('image_id', '=', id).where('status', 'in', ['pending', 'active']).execute();
      await trx
        .updateTable('image_locations')
        .set({ status: 'pending_delete', updated_at: now })
        .where('image_id', '=', id)
        .where('status', 'in', ['pending', 'active'])
        .execute();
      return queued.map(toLocation);
    });
  }

  /**
   * Takes the image's row lock inside `trx` (an UPDATE of its own row), so that writes to one image's
   * rows (locations, properties, tags) and its deletion happen one after the other on every engine.
   * False when the image is gone or not in one of `statuses`.
   */
  private async lockImage(
    trx: Transaction<Database>,
    id: string,
    statuses: readonly ImageStatus[] | null,
    fields: Partial<Omit<Row, 'id'>> = {},
  ): Promise<boolean> {
    let q = trx
      .updateTable('images')
      .set({ ...fields, updated_at: nowTimestamp() })
      .where('id', '=', id)
      .where('deleted', '=', 0);
    if (statuses) q = q.where('status', 'in', [...statuses]);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Records that data is about to be written at `url`: a `pending` location, made before the first
   * byte so that a crash or a delete at any later point leaves a row the clean-up finds. Reuses the
   * image's row for the same url (a resumed write). Null when the image is gone or not in `statuses`.
   */
  async reserveLocation(imageId: string, url: string, metadata: Record<string, unknown>, statuses: readonly ImageStatus[]): Promise<ImageLocation | null> {
    return this.k.transaction().execute(async (trx) => {
      if (!(await this.lockImage(trx, imageId, statuses))) return null;
      const existing = await trx
        .selectFrom('image_locations')
        .selectAll()
        .where('image_id', '=', imageId)
        .where('url', '=', url)
        .where('status', 'in', ['pending', 'active'])
        .executeTakeFirst();
      if (existing) return toLocation(existing);
      const now = nowTimestamp();
      const max = await trx
        .selectFrom('image_locations')
        .select((eb) => eb.fn.max('position').as('p'))
        .where('image_id', '=', imageId)
        .executeTakeFirst();
      const row = {
        id: crypto.randomUUID(),
        image_id: imageId,
        position: Number(max?.p ?? -1) + 1,
        url,
        metadata: JSON.stringify(metadata),
        status: 'pending',
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('image_locations').values(row).execute();
      return toLocation(row);
    });
  }

  /** Makes a reserved location visible; false when the image is gone or not in `statuses` (its data must go). */
  async activateLocation(imageId: string, locationId: string, statuses: readonly ImageStatus[]): Promise<boolean> {
    return this.k.transaction().execute(async (trx) => {
      if (!(await this.lockImage(trx, imageId, statuses))) return false;
      const res = await trx
        .updateTable('image_locations')
        .set({ status: 'active', updated_at: nowTimestamp() })
        .where('id', '=', locationId)
        .where('image_id', '=', imageId)
        .where('status', 'in', ['pending', 'active'])
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    });
  }

  /**
   * Makes stored data visible: `from` (saving, or importing) → active with the data's fields and its
   * reserved location, in one transaction, only while the image is still in `from` (false when it was
   * deleted meanwhile: the data must then go).
   */
  async activateWithData(id: string, activation: StatusChange, locationId: string, from: ImageStatus = 'saving'): Promise<boolean> {
    checkStatusChange([from], activation.status);
    return this.k.transaction().execute(async (trx) => {
      if (!(await this.lockImage(trx, id, [from], activation))) return false;
      const res = await trx
        .updateTable('image_locations')
        .set({ status: 'active', updated_at: nowTimestamp() })
        .where('id', '=', locationId)
        .where('image_id', '=', id)
        .where('status', 'in', ['pending', 'active'])
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new Error(`location ${locationId} of image ${id} vanished before activation`);
      return true;
    });
  }

  /** Images left in a transient upload state by a process that stopped (restart recovery). */
  async idsInStatus(status: ImageStatus): Promise<string[]> {
    const rows = await this.k.selectFrom('images').select('id').where('status', '=', status).where('deleted', '=', 0).execute();
    return rows.map((r) => r.id);
  }

  /** Every location of an image whose data may exist (active, or a write that may have begun). */
  async locationsOf(imageId: string): Promise<ImageLocation[]> {
    const rows = await this.k
      .selectFrom('image_locations')
      .selectAll()
      .where('image_id', '=', imageId)
      .where('status', 'in', ['pending', 'active'])
      .orderBy('position')
      .execute();
    return rows.map(toLocation);
  }

  /** Hides a location and queues its data for removal (pending_delete), whatever the image's state. */
  async discardLocation(locationId: string): Promise<void> {
    await this.k.updateTable('image_locations').set({ status: 'pending_delete', updated_at: nowTimestamp() }).where('id', '=', locationId).execute();
  }

  /**
   * Locations whose data is to be removed from stores (deleted images, failed writes, failed store
   * deletes), queued before `settledBefore`: a write still under way when its image was deleted has
   * had time to stop by then.
   */
  async locationsToScrub(limit: number, settledBefore: string): Promise<ImageLocation[]> {
    const rows = await this.k
      .selectFrom('image_locations')
      .selectAll()
      .where('status', '=', 'pending_delete')
      .where('updated_at', '<', settledBefore)
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map(toLocation);
  }

  async purgeLocation(locationId: string): Promise<void> {
    await this.k.deleteFrom('image_locations').where('id', '=', locationId).execute();
  }

  async list(query: ListQuery): Promise<Image[]> {
    let q = this.k.selectFrom('images').selectAll('images').where('images.deleted', '=', 0).where('images.status', 'not in', ['deleted', 'killed']);

    q = q.where((eb) => this.scopeCondition(eb, query.scope));
    q = q.where('images.os_hidden', '=', query.osHidden ? 1 : 0);

    for (const cond of query.conditions) {
      q = q.where((eb) => this.columnCondition(eb, cond));
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
      q = q.where((eb) =>
        eb.or(
          query.sort.map((key, i) =>
            eb.and([...query.sort.slice(0, i).map((s) => same(eb, s.key, marker[s.key])), after(eb, key.key, key.dir, marker[key.key])]),
          ),
        ),
      );
    }
    for (const s of query.sort) q = q.orderBy(sql`${sql.ref(`images.${s.key}`)} ${nullsClause(s.dir)}`);
    const rows = await this.withRelations(q.limit(query.limit)).execute();
    return rows.map(rowWithRelationsToImage);
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

  /**
   * The image rows with their properties, tags and active locations, in one query (one round trip per
   * image or page, where separate queries cost four): each relation as a JSON array column.
   */
  private withRelations<O extends Row>(q: SelectQueryBuilder<Database, 'images', O>) {
    const arrayFrom = this.db.engine === 'postgresql' ? pgJsonArrayFrom : sqliteJsonArrayFrom;
    return q.select((eb) => [
      arrayFrom(eb.selectFrom('image_properties as p').select(['p.name', 'p.value']).whereRef('p.image_id', '=', 'images.id')).as('rel_properties'),
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

  private async writeProperties(trx: Transaction<Database>, imageId: string, properties: Record<string, string>): Promise<void> {
    const rows = Object.entries(properties).map(([name, value]) => ({ image_id: imageId, name, value }));
    if (rows.length) await trx.insertInto('image_properties').values(rows).execute();
  }

  private async writeTags(trx: Transaction<Database>, imageId: string, tags: string[]): Promise<void> {
    const rows = [...new Set(tags)].map((value) => ({ image_id: imageId, value }));
    if (rows.length) await trx.insertInto('image_tags').values(rows).execute();
  }
}
