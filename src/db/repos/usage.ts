import { sql, type ExpressionBuilder, type Kysely, type Transaction } from 'kysely';
import type { Db } from '../connection.ts';
import type { Database } from '../schema.ts';
import type { ImageStatus } from '../../domain/image.ts';
import { serializedBy } from '../serialized.ts';
import { nowTimestamp } from '../../domain/time.ts';

/** What one project uses, counted as Glance counts it for quotas (spec plugins-and-safety §4). */
export interface ProjectUsage {
  /** Σ size × locations holding data of the owner's images (pending_delete ones too), plus what running writes reserved (bytes). */
  storedBytes: number;
  /** Bytes in staging (or reserved there by a running stage): images uploading/importing or copying to more stores. */
  stagedBytes: number;
  /** Images not killed or deleted (pending_delete ones count, as in Glance). */
  imageCount: number;
  /** Images taking data right now: saving, uploading, importing, or copying to more stores. */
  uploadingCount: number;
}

const GONE = ['killed', 'deleted'];
/** Locations whose data is still kept: live ones, and a delayed delete's until it is scrubbed. */
const HOLDING_DATA = ['active', 'delayed_delete'];
const TAKING_DATA = ['saving', 'uploading', 'importing'];
const COPYING = 'os_glance_importing_to_stores';

/** The image is being copied to more stores (its os_glance_importing_to_stores is not empty). */
function copying(eb: ExpressionBuilder<Database, 'images'>) {
  return eb.exists(
    eb
      .selectFrom('image_properties as p')
      .select('p.image_id')
      .whereRef('p.image_id', '=', 'images.id')
      .where('p.name', '=', COPYING)
      .where('p.value', '<>', ''),
  );
}

/**
 * A quota check that runs in the owner's serialized transaction (see `serializedBy`), given the usage
 * as that transaction sees it, its own write included: it throws to refuse, undoing the write.
 */
export interface UsageCheck {
  owner: string;
  check(usage: ProjectUsage): void;
}

/** The key that serializes one owner's quota checks. */
export function quotaLockKey(owner: string): string {
  return `quota:${owner}`;
}

/** What a running write holds: bytes it is about to store, bytes it is staging, or the size of the data it staged. */
export type HeldBytes = { reserved_bytes: number } | { staged_bytes: number } | { size: number; reserved_bytes: null; staged_bytes: null };

export class UsageRepo {
  constructor(private readonly db: Db) {}

  /** `excludeImageId`: the image being written, whose old size must not count against its own new data. */
  forProject(owner: string, excludeImageId: string | null = null): Promise<ProjectUsage> {
    return usageOf(this.db.kysely, owner, excludeImageId);
  }

  /**
   * Records what the image's running write holds against the quotas (its reserved_bytes, or the size
   * of its staged data), while it is in one of `statuses`; false when it is not (or is gone). Checked
   * against the quotas by running it inside checkedWrite (see QuotaService.hold).
   */
  async setHeld(imageId: string, statuses: ImageStatus[], held: HeldBytes, within?: Transaction<Database>): Promise<boolean> {
    const result = await (within ?? this.db.kysely)
      .updateTable('images')
      .set({ ...held, updated_at: nowTimestamp() })
      .where('id', '=', imageId)
      .where('deleted', '=', 0)
      .where('status', 'in', statuses)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Runs `write` (false: it found nothing to change) and then `check`, given the owner's usage with the
   * write counted (but `excludeImageId`'s data, when given), in the owner's serialized transaction: a
   * check that throws undoes the write, and writes checked side by side see each other.
   */
  checkedWrite(
    owner: string,
    write: (trx: Transaction<Database>) => Promise<boolean>,
    check: (usage: ProjectUsage) => void,
    excludeImageId: string | null = null,
  ): Promise<boolean> {
    return serializedBy(this.db, quotaLockKey(owner), async (trx) => {
      if (!(await write(trx))) return false;
      check(await usageOf(trx, owner, excludeImageId));
      return true;
    });
  }
}

export async function usageOf(k: Kysely<Database>, owner: string, excludeImageId: string | null): Promise<ProjectUsage> {
  // As Glance counts them: an image deleted with delayed_delete (pending_delete, hidden as deleted)
  // still counts, with its data, until the scrubber ends its delete.
  const live = k
    .selectFrom('images')
    .where('owner', '=', owner)
    .where((eb) => eb.or([eb('deleted', '=', 0), eb('status', '=', 'pending_delete')]))
    .where('status', 'not in', GONE)
    .where('id', '!=', excludeImageId ?? '');

  const stored = live
    .select(
      sql<
        string | number | null
      >`sum(images.size * (select count(*) from image_locations l where l.image_id = images.id and l.status in (${sql.join(HOLDING_DATA)})))`.as('bytes'),
    )
    .where('size', '>', 0);
  // What running uploads, imports and copies to more stores are about to store counts already (see
  // reserved_bytes): an image active after its first store still has the others to write.
  // The rest is about writes under way: a pending_delete image has none (whatever its rows still say).
  const writable = live.where('deleted', '=', 0);
  const reserved = writable
    .select(sql<string | number | null>`sum(images.reserved_bytes)`.as('bytes'))
    .where((eb) => eb.or([eb('status', 'in', ['saving', 'importing']), copying(eb)]));
  const staged = writable
    .select(sql<string | number | null>`sum(coalesce(images.size, images.staged_bytes))`.as('bytes'))
    .where((eb) => eb.or([eb('status', 'in', ['uploading', 'importing']), copying(eb)]));
  const count = live.select(sql<string | number>`count(*)`.as('n'));
  const uploading = writable.select(sql<string | number>`count(*)`.as('n')).where((eb) => eb.or([eb('status', 'in', TAKING_DATA), copying(eb)]));
  // One statement: all five see the same committed state. Apart, a write that ended between two of
  // them (an upload's hold turning into stored data) was counted by neither, and a quota let one more in.
  const row = await k
    .selectNoFrom([stored.as('stored'), reserved.as('reserved'), staged.as('staged'), count.as('images'), uploading.as('uploading')])
    .executeTakeFirstOrThrow();
  return {
    storedBytes: Number(row.stored ?? 0) + Number(row.reserved ?? 0),
    stagedBytes: Number(row.staged ?? 0),
    imageCount: Number(row.images ?? 0),
    uploadingCount: Number(row.uploading ?? 0),
  };
}
