import type { Db } from '../connection.ts';
import { nowTimestamp } from '../../domain/time.ts';

/** The nodes sharing this database, each with the time until which it vouches that it runs. */
export class NodesRepo {
  constructor(private readonly db: Db) {}

  private get k() {
    return this.db.kysely;
  }

  /** Records that `name` runs until `until` (its next renewal is due well before). */
  async beat(name: string, until: string): Promise<void> {
    const res = await this.k.updateTable('nodes').set({ alive_until: until }).where('name', '=', name).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) await this.k.insertInto('nodes').values({ name, alive_until: until }).execute();
  }

  /**
   * Which of `names` stopped renewing: their row's time has passed. A name without a row is not among
   * them: it may be a node older than the rows (during an upgrade), and nothing says it stopped.
   */
  async expiredAmong(names: string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const rows = await this.k.selectFrom('nodes').select('name').where('name', 'in', names).where('alive_until', '<', nowTimestamp()).execute();
    return new Set(rows.map((row) => row.name));
  }

  /** Drops the rows of nodes that stopped renewing before `before`. */
  async forgetExpiredBefore(before: string): Promise<number> {
    const res = await this.k.deleteFrom('nodes').where('alive_until', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
