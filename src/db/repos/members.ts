import { isUniqueViolation, type Db } from '../connection.ts';
import { retryOnDeadlock } from '../deadlock.ts';
import { serializedBy } from '../serialized.ts';
import type { Kysely } from 'kysely';
import type { Database, ImageMembersTable } from '../schema.ts';
import { nowTimestamp } from '../../domain/time.ts';

export type MemberRow = ImageMembersTable;

export class MembersRepo {
  constructor(private readonly db: Db) {}

  list(imageId: string): Promise<MemberRow[]> {
    return this.db.kysely.selectFrom('image_members').selectAll().where('image_id', '=', imageId).orderBy('created_at').execute();
  }

  async get(imageId: string, member: string): Promise<MemberRow | null> {
    return (
      (await this.db.kysely.selectFrom('image_members').selectAll().where('image_id', '=', imageId).where('member', '=', member).executeTakeFirst()) ?? null
    );
  }

  count(imageId: string): Promise<number> {
    return countOf(this.db.kysely, imageId);
  }

  /**
   * Returns null when the member already exists (unique constraint), so the caller can answer 409. With
   * `checkCount`, which is given the image's number of members and throws to refuse one more (a quota),
   * the adds to one image are checked one after the other, across processes: the quota holds.
   */
  async add(imageId: string, member: string, checkCount?: (members: number) => void): Promise<MemberRow | null> {
    for (let attempt = 1; ; attempt++) {
      const now = nowTimestamp();
      const row: MemberRow = { id: crypto.randomUUID(), image_id: imageId, member, status: 'pending', created_at: now, updated_at: now };
      try {
        await retryOnDeadlock<unknown>(() =>
          checkCount
            ? serializedBy(this.db, `members:${imageId}`, async (trx) => {
                checkCount(await countOf(trx, imageId));
                await trx.insertInto('image_members').values(row).execute();
              })
            : this.db.kysely.insertInto('image_members').values(row).execute(),
        );
        return row;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        if (await this.get(imageId, member)) return null;
        // The member in the way was removed meanwhile (a remove racing this add): the add goes again.
        if (attempt >= 5) throw err;
      }
    }
  }

  /** Setting the status a member already has changes nothing, not even updated_at (as in Glance). */
  async setStatus(imageId: string, member: string, status: string): Promise<MemberRow | null> {
    await retryOnDeadlock(() =>
      this.db.kysely
        .updateTable('image_members')
        .set({ status, updated_at: nowTimestamp() })
        .where('image_id', '=', imageId)
        .where('member', '=', member)
        .where('status', '!=', status)
        .execute(),
    );
    return this.get(imageId, member);
  }

  async remove(imageId: string, member: string): Promise<boolean> {
    const res = await retryOnDeadlock(() =>
      this.db.kysely.deleteFrom('image_members').where('image_id', '=', imageId).where('member', '=', member).executeTakeFirst(),
    );
    return Number(res.numDeletedRows) > 0;
  }
}

async function countOf(k: Kysely<Database>, imageId: string): Promise<number> {
  const row = await k
    .selectFrom('image_members')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('image_id', '=', imageId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
