import SQLite from 'better-sqlite3';

/** A cached image as Glance's cache API lists it (times in seconds since the epoch). */
export interface CachedImage {
  image_id: string;
  hits: number;
  last_accessed: number;
  last_modified: number;
  size: number;
}

export interface CacheRecord extends CachedImage {
  /** md5 of the cached bytes, computed as they were written. */
  checksum: string;
}

// Seconds to the clock's full precision, as Python's time.time() gives Glance's cache index (the API shows them).
const now = () => (performance.timeOrigin + performance.now()) / 1000;

/**
 * The cache's own small database on the node (Glance's image_cache_sqlite_db): what is cached, how
 * often and how recently it was read, and what is queued for prefetching. Several processes of one
 * node share it (WAL, busy timeout).
 */
export class CacheIndex {
  private readonly db: SQLite.Database;

  constructor(file: string) {
    this.db = new SQLite(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS cached_images (
        image_id TEXT PRIMARY KEY, size INTEGER NOT NULL, checksum TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0, last_accessed REAL NOT NULL, last_modified REAL NOT NULL);
      CREATE TABLE IF NOT EXISTS queued_images (image_id TEXT PRIMARY KEY, queued_at REAL NOT NULL);`);
  }

  get(id: string): CacheRecord | undefined {
    return this.db.prepare('SELECT * FROM cached_images WHERE image_id = ?').get(id) as CacheRecord | undefined;
  }

  put(id: string, size: number, checksum: string): void {
    const t = now();
    this.db
      .prepare(
        // A new entry was last accessed when it was cached, as in both of Glance's cache drivers.
        `INSERT INTO cached_images (image_id, size, checksum, hits, last_accessed, last_modified) VALUES (?, ?, ?, 0, ?, ?)
         ON CONFLICT (image_id) DO UPDATE SET size = excluded.size, checksum = excluded.checksum, hits = 0,
           last_accessed = excluded.last_accessed, last_modified = excluded.last_modified`,
      )
      .run(id, size, checksum, t, t);
  }

  hit(id: string): void {
    this.db.prepare('UPDATE cached_images SET hits = hits + 1, last_accessed = ? WHERE image_id = ?').run(now(), id);
  }

  remove(id: string): boolean {
    return this.db.prepare('DELETE FROM cached_images WHERE image_id = ?').run(id).changes > 0;
  }

  list(): CachedImage[] {
    return this.db.prepare('SELECT image_id, hits, last_accessed, last_modified, size FROM cached_images ORDER BY image_id').all() as CachedImage[];
  }

  totalSize(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS total FROM cached_images').get() as { total: number }).total;
  }

  /** Least recently used first (never read: by when it was cached). */
  leastRecentlyUsed(): CachedImage[] {
    return this.db
      .prepare('SELECT image_id, hits, last_accessed, last_modified, size FROM cached_images ORDER BY MAX(last_accessed, last_modified), hits')
      .all() as CachedImage[];
  }

  queue(id: string): void {
    this.db.prepare('INSERT INTO queued_images (image_id, queued_at) VALUES (?, ?) ON CONFLICT (image_id) DO NOTHING').run(id, now());
  }

  dequeue(id: string): boolean {
    return this.db.prepare('DELETE FROM queued_images WHERE image_id = ?').run(id).changes > 0;
  }

  /** In the order they were queued. */
  queued(): string[] {
    return (this.db.prepare('SELECT image_id FROM queued_images ORDER BY rowid').all() as Array<{ image_id: string }>).map((r) => r.image_id);
  }

  clearQueue(): number {
    return this.db.prepare('DELETE FROM queued_images').run().changes;
  }

  close(): void {
    this.db.close();
  }
}
