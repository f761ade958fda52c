import { chmod, link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { StoreError, type ByteRange, type StoreDriver, type WriteOptions, type WriteResult } from './driver.ts';
import { processTag, processTagGone } from '../util/process.ts';
import { DurableFileWriter } from './durable-writer.ts';
import { FileRangeReader } from './file-reader.ts';

/** Files under one directory; `file:///dir/<key>` urls, as Glance's filesystem store writes them. */
export class FileStoreDriver implements StoreDriver {
  readonly type = 'file';
  readonly capabilities = { writable: true, rangeRead: true, adopt: true, localPartials: true, closable: false, list: true, orphans: true };
  readonly dir: string;
  /** filesystem_store_file_perm: the mode each image file gets (null: the process's default). */
  private readonly fileMode: number | null;
  private dirOpened: Promise<void> | null = null;

  constructor(dir: string, opts: { fileMode?: number | null } = {}) {
    this.dir = path.resolve(dir);
    this.fileMode = opts.fileMode ?? null;
  }

  /**
   * Creates the directory if needed. With a file mode that lets the group or others read, they may also
   * enter the directory (g+x, o+x), as Glance's store sets it (checked once per process).
   */
  private async prepareDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const fileMode = this.fileMode;
    if (fileMode === null) return;
    this.dirOpened ??= (async () => {
      const mode = (await stat(this.dir)).mode & 0o7777;
      const wanted = mode | (fileMode & 0o070 ? 0o010 : 0) | (fileMode & 0o007 ? 0o001 : 0);
      if (wanted !== mode) await chmod(this.dir, wanted).catch((err: Error) => this.permissionsNotSet(this.dir, err));
    })().catch((err: unknown) => {
      this.dirOpened = null;
      throw err;
    });
    await this.dirOpened;
  }

  /** filesystem_store_file_perm on one file; a failure is a warning, as in Glance, never a failed write. */
  private async setFileMode(file: string): Promise<void> {
    if (this.fileMode !== null) await chmod(file, this.fileMode).catch((err: Error) => this.permissionsNotSet(file, err));
  }

  private permissionsNotSet(file: string, err: Error): void {
    process.emitWarning(`filesystem_store_file_perm: could not set the permissions of ${file} (${err.message})`);
  }

  async write(key: string, source: Readable, opts: WriteOptions = {}): Promise<WriteResult> {
    await this.prepareDir();
    const final = path.join(this.dir, key);
    // A dot-name in the same directory: rename() is then atomic, and a crash leaves only a temp to sweep.
    const temp = path.join(this.dir, partialName(key));
    let size = 0;
    try {
      const handle = await open(temp, 'wx');
      try {
        // The bytes reach the disk before the name makes them visible.
        const out = new DurableFileWriter(handle);
        await pipeline(source, out, { signal: opts.signal });
        size = out.bytesWritten;
      } finally {
        await handle.close();
      }
      await this.setFileMode(temp);
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return { url: this.urlFor(key), size };
  }

  async list(prefix: string): Promise<string[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    // Dot-names are writes in progress (or their leftovers).
    return names.filter((name) => !name.startsWith('.') && name.startsWith(prefix)).sort();
  }

  async adopt(key: string, file: string): Promise<WriteResult | null> {
    await this.prepareDir();
    const temp = path.join(this.dir, partialName(key));
    try {
      // A second name for the same (already synced) bytes; rename makes it visible whole, as write() does.
      await link(file, temp);
      await this.setFileMode(temp);
      await rename(temp, path.join(this.dir, key));
    } catch (err) {
      await rm(temp, { force: true });
      // Another filesystem, or one without hard links: the caller copies instead.
      if (['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
      throw err;
    }
    return { url: this.urlFor(key), size: (await stat(path.join(this.dir, key))).size };
  }

  properties(): Record<string, unknown> {
    return { data_dir: this.dir, chunk_size: 65536, thin_provisioning: false };
  }

  /** The url an object of this key has (or would have) in this store. */
  urlFor(key: string): string {
    return pathToFileURL(path.join(this.dir, key)).href;
  }

  async read(url: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(url);
    // Opened before the stream exists: a file removed meanwhile is a rejected promise here, never a
    // late 'error' event on a stream nobody listens to yet.
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreError('NOT_FOUND', `no data at ${url}`);
      throw err;
    }
    try {
      const size = (await handle.stat()).size;
      return new FileRangeReader(handle, range?.start ?? 0, range ? Math.min(range.end, size - 1) : size - 1);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async delete(url: string): Promise<void> {
    await rm(this.pathOf(url), { force: true });
  }

  async stat(url: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(url))).size;
    } catch {
      return null;
    }
  }

  owns(url: string): boolean {
    try {
      return path.dirname(this.pathOf(url)) === this.dir;
    } catch {
      return false;
    }
  }

  /**
   * Temp files of writes that never finished (a crash), for cleanup. Files changed within `idleMs` may
   * belong to a write still running in another process sharing the directory, and are kept.
   */
  async sweepPartials(idleMs = 0): Promise<number> {
    return this.removePartials(async (partial) => !(await this.partialIsLive(partial, idleMs)));
  }

  /**
   * The same while the service runs, for a directory shared by several hosts: a host that died for good
   * never sweeps its own at a restart. Only partials of keys no write is under way for (`inUse`, from
   * the database), unchanged for `minAgeMs`, go.
   */
  async sweepOrphans(inUse: (key: string) => boolean, minAgeMs: number): Promise<number> {
    return this.removePartials(async (partial) => !inUse(partial.key) && !(await this.partialIsLive(partial, minAgeMs)));
  }

  private async removePartials(dead: (partial: TempFile) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for (const partial of await this.partials()) {
      if (!(await dead(partial))) continue;
      await rm(path.join(this.dir, partial.name), { force: true });
      removed += 1;
    }
    return removed;
  }

  /** The temp files in the directory, each with the key and the writer its name gives. */
  private async partials(): Promise<TempFile[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names
      .filter((name) => name.startsWith(PARTIAL))
      .map((name) => ({ name, key: name.slice(PARTIAL.length).split('-').slice(0, -2).join('-'), writer: name.split('-').at(-2) ?? '' }));
  }

  /**
   * A temp file is live while it keeps changing and the process named in it runs. A process of another
   * host sharing the directory cannot be probed: its file is judged by its changes alone.
   */
  private async partialIsLive(partial: TempFile, idleMs: number): Promise<boolean> {
    if (processTagGone(partial.writer)) return false;
    const info = await stat(path.join(this.dir, partial.name)).catch(() => null);
    // idleMs 0 keeps nothing for its recency: a file's mtime can read a fraction of a ms past Date.now().
    return info !== null && idleMs > 0 && Date.now() - info.mtimeMs < idleMs;
  }

  /** Whether a write of `key` is under way here (a temp file changed within `idleMs`). */
  async writeInProgress(key: string, idleMs: number): Promise<boolean> {
    for (const partial of await this.partials()) {
      if (partial.key === key && (await this.partialIsLive(partial, idleMs))) return true;
    }
    return false;
  }

  private pathOf(url: string): string {
    if (!url.startsWith('file://')) throw new StoreError('INVALID_URL', `not a file url: ${url}`);
    const file = path.resolve(fileURLToPath(url));
    // A location must never reach outside this store's directory.
    if (path.dirname(file) !== this.dir) throw new StoreError('INVALID_URL', `${url} is outside the store`);
    return file;
  }
}

const PARTIAL = '.partial-';

/** A write's temp file: `.partial-<key>-<process tag>-<time>` (the key may hold dashes; the tag and time do not). */
function partialName(key: string): string {
  return `${PARTIAL}${key}-${processTag()}-${Date.now()}`;
}

interface TempFile {
  name: string;
  key: string;
  /** The process tag of the writer. */
  writer: string;
}
