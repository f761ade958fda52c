import type { CompiledQuery, Kysely, Transaction } from 'kysely';
import { retryOnDeadlock } from '../deadlock.ts';
import { refuseNulValue } from '../refuse-nul.ts';
import type { Database, ImagesTable } from '../schema.ts';
import { isUniqueViolation, type Db } from '../connection.ts';
import { checkStatusChange, ImageGone, IMPORT_LOCK, NULL_VALUE, propertiesEndedBy } from '../../domain/image.ts';
import type { Image, ImageLocation, ImageStatus, PropertyWrites, StatusChange } from '../../domain/image.ts';
import { nowTimestamp } from '../../domain/time.ts';
import { serializedBy } from '../serialized.ts';
import { quotaLockKey, usageOf, type UsageCheck } from './usage.ts';
import { changedColumns, imageToRow, imagesFromRows, rowToImage, toLocation, withRelations, type RowWithRelations } from './image-rows.ts';
import { listImages, type ListQuery } from './image-list-query.ts';
import {
  activateLocationRow,
  findOrInsertPendingLocation,
  LIVE,
  liveLocationsOf,
  locationsToScrub,
  moveLocations,
  HOLDING,
  locationsEndingAs,
} from './image-location-rows.ts';
import { locksOfFinishedTasks, writesInStatuses, type WriteInProgress } from './image-recovery-queries.ts';
import { locationsChanged, locationsUnchangedSince, writeLocationList } from './image-location-writes.ts';
import { clearProperties, dropRelations, insertProperties, insertTags, removeProperty, setPropertiesIn } from './image-property-writes.ts';

/** Thrown inside a save to roll it back: the image's locations changed since the saved copy was read. */
class LocationsMovedOn extends Error {}

export type { ColumnCondition, CompareOp, ImageColumn, ListQuery, ListScope, SortKey } from './image-list-query.ts';

type Row = ImagesTable;

/** Column writes: without a status, or with a status change made in the domain (domain/image.ts). */
export type ImageFieldUpdate = (Partial<Omit<Row, 'id' | 'status'>> & { status?: never }) | (StatusChange & Partial<Omit<Row, 'id' | 'status'>>);

/** Stands for the image id in the compiled form of get(): replaced by the real id on each call. */
const ID_SLOT = `image-id-slot-${crypto.randomUUID()}`;

export class ImagesRepo {
  /** get()'s query, built and compiled once: an image show is mostly this query, and building it each time cost more than running it. */
  private compiledGet: CompiledQuery<RowWithRelations> | null = null;

  constructor(private readonly db: Db) {}

  private get k() {
    return this.db.kysely;
  }

  /** True when the id was ever used, deleted images included (Glance refuses to reuse them). */
  async idExists(id: string): Promise<boolean> {
    const row = await this.k.selectFrom('images').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined;
  }

  /** With `quota`, the insert is checked by it, one after the other with the owner's other quota checks. */
  async insert(image: Image, quota?: UsageCheck): Promise<void> {
    const insert = async (trx: Transaction<Database>) => {
      await trx
        .insertInto('images')
        .values({ ...imageToRow(image), deleted: 0, deleted_at: null })
        .execute();
      await insertProperties(trx, image.id, image.properties, 1);
      await insertTags(trx, image.id, image.tags);
    };
    if (!quota) return this.k.transaction().execute(insert);
    return serializedBy(this.db, quotaLockKey(quota.owner), async (trx) => {
      await insert(trx);
      quota.check(await usageOf(trx, quota.owner, null));
    });
  }

  async get(id: string): Promise<Image | null> {
    this.compiledGet ??= withRelations(
      this.db,
      this.k.selectFrom('images').selectAll('images').where('id', '=', ID_SLOT).where('deleted', '=', 0),
    ).compile() as CompiledQuery<RowWithRelations>;
    const query = this.compiledGet;
    refuseNulValue(id); // a compiled query runs past the plugin that checks the others
    const { rows } = await this.k.executeQuery<RowWithRelations>({ ...query, parameters: query.parameters.map((p) => (p === ID_SLOT ? id : p)) });
    return (await imagesFromRows(this.k, rows))[0] ?? null;
  }

  /** An image's own row, deleted or not (a deleted one has no properties, tags or locations left). */
  async getRow(id: string): Promise<Image | null> {
    const row = await this.k.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? rowToImage(row) : null;
  }

  /** The image, which work in progress needs: gone (deleted meanwhile) is an `ImageGone`. */
  async require(id: string): Promise<Image> {
    const image = await this.get(id);
    if (!image) throw new ImageGone(id);
    return image;
  }

  /**
   * Saves the image aggregate (row, properties, tags) in one transaction. With `original` (the image as
   * the caller read it), only what changed since is written, under the image's row lock: concurrent
   * saves that change different fields all keep their changes (no lost update), and `verify` sees the
   * result with everyone's committed changes before it commits (throw to refuse). Without `original`
   * the whole aggregate is replaced. With `expectStatus` the write only happens while the stored status
   * still is that one (compare-and-set); returns false otherwise, or when the image is gone, or when a
   * changed location list was edited on locations another writer has changed since.
   */
  async save(
    image: Image,
    opts: { expectStatus?: ImageStatus; touch?: boolean; original?: Image; verify?: (saved: Image) => void; maxLocations?: number } = {},
  ): Promise<boolean> {
    if (opts.touch !== false) image.updated_at = nowTimestamp();
    const { original } = opts;
    // Run again when it loses a deadlock (a writer locking the same rows in another order, a schema upgrade's transaction).
    const saving = retryOnDeadlock(() =>
      this.k.transaction().execute(async (trx) => {
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
        if (original && locationsChanged(original.locations, image.locations)) {
          // Under the row lock just taken: another writer's location change since `original` was read
          // undoes this whole save, and the caller reads and applies its patch again.
          if (!(await locationsUnchangedSince(trx, image.id, original.locations))) throw new LocationsMovedOn();
          await writeLocationList(trx, image, original, opts.maxLocations ?? -1);
        }
        if (!original) {
          await clearProperties(trx, image.id);
          await insertProperties(trx, image.id, image.properties, 1);
          await trx.deleteFrom('image_tags').where('image_id', '=', image.id).execute();
          await insertTags(trx, image.id, image.tags);
          return true;
        }
        const before = original.properties;
        const changedKeys = [...new Set([...Object.keys(before), ...Object.keys(image.properties)])].filter((key) => before[key] !== image.properties[key]);
        const propertyWrite = (key: string) => (!Object.hasOwn(image.properties, key) ? null : (image.properties[key] ?? NULL_VALUE));
        await setPropertiesIn(trx, image.id, Object.fromEntries(changedKeys.map((key) => [key, propertyWrite(key)])));
        const removedTags = original.tags.filter((t) => !image.tags.includes(t));
        if (removedTags.length) await trx.deleteFrom('image_tags').where('image_id', '=', image.id).where('value', 'in', removedTags).execute();
        const addedTags = [...new Set(image.tags.filter((t) => !original.tags.includes(t)))];
        if (addedTags.length) {
          const insert = trx.insertInto('image_tags').values(addedTags.map((value) => ({ image_id: image.id, value })));
          // A tag another writer added meanwhile is no conflict.
          await (
            this.db.engine === 'mysql'
              ? insert.onDuplicateKeyUpdate({ value: (eb) => eb.ref('image_tags.value') })
              : insert.onConflict((oc) => oc.columns(['image_id', 'value']).doNothing())
          ).execute();
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
      }),
    );
    return saving.catch((err: unknown) => {
      if (err instanceof LocationsMovedOn) return false;
      throw err;
    });
  }

  /**
   * Compare-and-set of status plus some columns; with `properties`, those properties are set (null
   * removes one) in the same transaction, only when the row was updated. Tags are left alone.
   */
  async updateFields(
    id: string,
    expectStatus: ImageStatus | ImageStatus[] | null,
    fields: ImageFieldUpdate,
    properties?: PropertyWrites,
    {
      expectProperty,
      within,
    }: {
      /** Only if the image still has this property with this value (who writes its data, say). */
      expectProperty?: { name: string; value: string };
      /** A transaction to write in (a quota check's, which undoes the change when it refuses). */
      within?: Transaction<Database>;
    } = {},
  ): Promise<boolean> {
    const expected = expectStatus === null ? null : Array.isArray(expectStatus) ? expectStatus : [expectStatus];
    let ended: Record<string, null> = {};
    if (fields.status !== undefined) {
      checkStatusChange(expected, fields.status);
      ended = propertiesEndedBy(expected, fields.status);
    }
    const toSet = Object.keys(ended).length ? { ...ended, ...properties } : properties;
    if (expected?.length === 0) return false;
    if (!toSet) return this.updateRow(within ?? this.k, id, expected, fields, expectProperty);
    const write = async (trx: Transaction<Database>) => {
      if (!(await this.updateRow(trx, id, expected, fields, expectProperty))) return false;
      await setPropertiesIn(trx, id, toSet);
      return true;
    };
    return within ? write(within) : retryOnDeadlock(() => this.k.transaction().execute(write));
  }

  /** updateFields() for work that must find the image as it left it: otherwise it is an `ImageGone`. */
  async requireUpdate(id: string, expectStatus: ImageStatus, fields: ImageFieldUpdate, properties?: PropertyWrites): Promise<void> {
    if (!(await this.updateFields(id, expectStatus, fields, properties))) throw new ImageGone(id);
  }

  async setProperty(id: string, name: string, value: string | null): Promise<void> {
    await this.setProperties(id, { [name]: value });
  }

  /** Sets several properties in one transaction (null removes one). */
  async setProperties(id: string, properties: PropertyWrites): Promise<void> {
    await this.k.transaction().execute((trx) => setPropertiesIn(trx, id, properties));
  }

  /** Takes the import lock (`os_glance_import_task`) atomically: false when any task already holds it. */
  async takeImportLock(id: string, taskId: string): Promise<boolean> {
    try {
      // The key's uniqueness makes it atomic; it goes after the image's other properties, as in Glance.
      await this.k.transaction().execute((trx) => insertProperties(trx, id, { [IMPORT_LOCK]: taskId }));
      return true;
    } catch (err) {
      // Only the key's uniqueness says another task holds it: a database error is no answer about the lock.
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  /** Drops the lock only if `taskId` still holds it (compare by value); true when it did. */
  async releaseImportLock(id: string, taskId: string): Promise<boolean> {
    return this.k.transaction().execute((trx) => removeProperty(trx, id, IMPORT_LOCK, taskId));
  }

  /**
   * Deletes the image and queues the data of all its locations for removal. Returns the queued
   * locations with the status each had (a `pending` one is a write still under way, which cleans up
   * after itself), or null when the image was already gone (or, with `unlessProtected`, is protected:
   * a PATCH that protected it after the caller looked must win over the delete).
   */
  async markDeleted(id: string, opts: { unlessProtected?: boolean } = {}): Promise<ImageLocation[] | null> {
    const now = nowTimestamp();
    return retryOnDeadlock(() =>
      this.k.transaction().execute(async (trx) => {
        const fields = { status: 'deleted', deleted: 1, deleted_at: now } as const;
        if (!(await this.updateRow(trx, id, null, fields, undefined, opts.unlessProtected))) return null;
        await dropRelations(trx, id);
        const queued = await trx.selectFrom('image_locations').selectAll().where('image_id', '=', id).where('status', 'in', LIVE).execute();
        await moveLocations(trx, id, now, LIVE, 'pending_delete');
        return queued.map(toLocation);
      }),
    );
  }

  /**
   * An UPDATE of the image's own row, while it is not deleted and (with `statuses`) in one of them;
   * false otherwise. Inside a transaction it takes the image's row lock, so that writes to one image's
   * rows (locations, properties, tags) and its deletion happen one after the other on every engine.
   */
  private async updateRow(
    db: Kysely<Database>,
    id: string,
    statuses: readonly ImageStatus[] | null,
    fields: Partial<Omit<Row, 'id'>> = {},
    expectProperty?: { name: string; value: string },
    unlessProtected = false,
  ): Promise<boolean> {
    let q = db
      .updateTable('images')
      .set({ ...fields, updated_at: nowTimestamp() })
      .where('id', '=', id)
      .where('deleted', '=', 0);
    if (unlessProtected) q = q.where('protected', '=', 0);
    if (statuses) q = q.where('status', 'in', [...statuses]);
    if (expectProperty) {
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('image_properties')
            .select('image_properties.image_id')
            .where('image_properties.image_id', '=', id)
            .where('image_properties.name', '=', expectProperty.name)
            .where('image_properties.value', '=', expectProperty.value),
        ),
      );
    }
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Records that data is about to be written at `url`: a `pending` location, made before the first
   * byte so that a crash or a delete at any later point leaves a row the clean-up finds. Reuses the
   * image's row for the same url (a resumed write). ImageGone when the image is gone or not in `statuses`.
   */
  async reserveLocation(imageId: string, url: string, metadata: Record<string, unknown>, statuses: readonly ImageStatus[]): Promise<ImageLocation> {
    return this.k.transaction().execute(async (trx) => {
      if (!(await this.updateRow(trx, imageId, statuses))) throw new ImageGone(imageId);
      return findOrInsertPendingLocation(trx, imageId, url, metadata);
    });
  }

  /** Makes a reserved location visible; ImageGone when the image is gone or not in `statuses` (its data must go). */
  async activateLocation(imageId: string, locationId: string, statuses: readonly ImageStatus[]): Promise<void> {
    await this.k.transaction().execute(async (trx) => {
      if (!((await this.updateRow(trx, imageId, statuses)) && (await activateLocationRow(trx, imageId, locationId)))) throw new ImageGone(imageId);
    });
  }

  /**
   * Makes stored data visible: `from` (saving, or importing) → active with the data's fields and its
   * reserved location, in one transaction, only while the image is still in `from` (ImageGone when it
   * was deleted or moved on meanwhile: the data must then go).
   */
  async activateWithData(id: string, activation: StatusChange, locationId: string, from: ImageStatus = 'saving'): Promise<void> {
    checkStatusChange([from], activation.status);
    await this.k.transaction().execute(async (trx) => {
      if (!(await this.updateRow(trx, id, [from], activation))) throw new ImageGone(id);
      if (!(await activateLocationRow(trx, id, locationId))) throw new Error(`location ${locationId} of image ${id} vanished before activation`);
      await setPropertiesIn(trx, id, propertiesEndedBy([from], activation.status));
    });
  }

  /** Images left in a transient upload state by a process that stopped (restart recovery). */
  async idsInStatus(status: ImageStatus): Promise<string[]> {
    const rows = await this.k.selectFrom('images').select('id').where('status', '=', status).where('deleted', '=', 0).execute();
    return rows.map((r) => r.id);
  }

  /** The images in these statuses with their writer (os_glance_upload_node) and stage host, in one query. */
  writesInStatuses(statuses: readonly ImageStatus[]): Promise<WriteInProgress[]> {
    return writesInStatuses(this.k, statuses);
  }

  /** Import locks held by a task that finished before `before`, on images not left `importing`. */
  locksOfFinishedTasks(before: string, limit: number): Promise<Array<{ imageId: string; taskId: string }>> {
    return locksOfFinishedTasks(this.k, before, limit);
  }

  /** Every location of an image whose data may exist (active, or a write that may have begun). */
  locationsOf(imageId: string): Promise<ImageLocation[]> {
    return liveLocationsOf(this.k, imageId);
  }

  /** The status of a location's row; null when there is none. */
  async locationStatus(locationId: string): Promise<string | null> {
    const row = await this.k.selectFrom('image_locations').select('status').where('id', '=', locationId).executeTakeFirst();
    return row?.status ?? null;
  }

  /**
   * Hides a location and queues its data for removal (pending_delete), whatever the image's state (and
   * only while the row is in one of `from`, when given); false when its row is gone (another scrubber
   * purged it) or in another status.
   */
  async discardLocation(locationId: string, from?: readonly string[]): Promise<boolean> {
    let query = this.k.updateTable('image_locations').set({ status: 'pending_delete', updated_at: nowTimestamp() }).where('id', '=', locationId);
    if (from) query = query.where('status', 'in', [...from]);
    const res = await query.executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * discardLocation() for several locations of an image at once, under its row lock, and only while
   * another of its locations stays visible: two removals at once cannot leave it without data. `last`
   * when nothing else would stay, `not-active` when the image is gone or not in `statuses` (null: any).
   */
  async discardLocationsKeepingOne(
    imageId: string,
    locationIds: readonly string[],
    statuses: readonly ImageStatus[] | null = ['active'],
    /** Which staying locations count as a copy kept (one a store of this node reads); all by default. */
    counts: (location: ImageLocation) => boolean = () => true,
  ): Promise<'discarded' | 'last' | 'not-active'> {
    return this.k.transaction().execute(async (trx) => {
      if (!(await this.updateRow(trx, imageId, statuses))) return 'not-active';
      const staying = await trx
        .selectFrom('image_locations')
        .selectAll()
        .where('image_id', '=', imageId)
        .where('status', '=', 'active')
        .where('id', 'not in', [...locationIds])
        .execute();
      if (!staying.map(toLocation).some(counts)) return 'last';
      await trx
        .updateTable('image_locations')
        .set({ status: 'pending_delete', updated_at: nowTimestamp() })
        .where('image_id', '=', imageId)
        .where('id', 'in', [...locationIds])
        .execute();
      return 'discarded';
    });
  }

  /** Locations queued for removal from stores before `settledBefore` (see image-location-rows.ts). */
  locationsToScrub(limit: number, settledBefore: string): Promise<ImageLocation[]> {
    return locationsToScrub(this.k, limit, settledBefore);
  }

  /** Deletes a location's row; false when it was already gone. */
  async purgeLocation(locationId: string): Promise<boolean> {
    const res = await this.k.deleteFrom('image_locations').where('id', '=', locationId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  list(query: ListQuery): Promise<Image[]> {
    return listImages(this.db, query);
  }

  /**
   * The locations, of any image, that hold data or may hold it again (pending, active, delayed_delete)
   * and may name the object `url` names (see locationsEndingAs; the store tells which do).
   */
  locationsEndingAs(url: string): Promise<Array<ImageLocation & { imageId: string }>> {
    return locationsEndingAs(this.db, url, HOLDING);
  }
}
