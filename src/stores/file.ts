import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { chmod, link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { processWarning, StoreError, type ByteRange, type KeepKey, type StoreDriver, type Warn, type WriteOptions, type WriteResult } from './driver.ts';
import { processTagGone, processTagRunsBeside } from '../util/process.ts';
import { parsePartialName, partialName, type TempFile } from './file-partials.ts';
import { DurableFileWriter } from './durable-writer.ts';
import { FileRangeReader } from './file-reader.ts';

/** An entry of filesystem_store_metadata_file: `id` and `mountpoint`, and whatever else the operator put in it. */
export interface MountpointMetadata {
  id: string;
  mountpoint: string;
  [key: string]: unknown;
}

/** One directory of a store, and its priority among the store's directories (filesystem_store_datadirs). */
export interface DataDir {
  path: string;
  priority: number;
}

/**
 * Files under one directory, or several (Glance's filesystem_store_datadirs); `file:///dir/<key>` urls,
 * as Glance's filesystem store writes them. With several, a write goes to the directory of the highest
 * priority that has room for it (of equal priorities, the one with the most free space), and data is
 * read from any of them.
 */
/** How long a temporary file of another running process of this host is kept unchanged (its upload paused). */
const OTHER_PROCESS_PARTIAL_MAX_IDLE_MS = 24 * 3600 * 1000;

export class FileStoreDriver implements StoreDriver {
  readonly type = 'file';
  readonly capabilities = { writable: true, rangeRead: true, adopt: true, localPartials: true, closable: false, list: true, orphans: true };
  /** The first directory of the highest priority (the only one, usually). */
  readonly dir: string;
  readonly places: readonly string[];
  readonly dirs: readonly DataDir[];
  /** filesystem_store_file_perm: the mode each image file gets (null: the process's default). */
  private readonly fileMode: number | null;
  private readonly dirsOpened = new Map<string, Promise<void>>();
  private dirsCreated = false;
  /** Directories whose free space could not be read (each named in one warning until it can be again). */
  private readonly unreadable = new Set<string>();

  /** filesystem_thin_provisioning: zeros are left as holes. */
  private readonly sparse: boolean;
  /** filesystem_store_metadata_file's entries: a new location gets the one whose mountpoint holds its file. */
  private readonly mountpoints: readonly MountpointMetadata[];
  private readonly warn: Warn;

  constructor(
    dirs: string | readonly DataDir[],
    opts: { fileMode?: number | null; sparse?: boolean; mountpoints?: readonly MountpointMetadata[]; warn?: Warn } = {},
  ) {
    const list = typeof dirs === 'string' ? [{ path: dirs, priority: 0 }] : dirs;
    if (list.length === 0) throw new Error('a file store needs a directory');
    // Highest priority first; the order given among equals (sort is stable).
    this.dirs = list.map((d) => ({ path: path.resolve(d.path), priority: d.priority })).sort((a, b) => b.priority - a.priority);
    this.dir = this.dirs[0]!.path;
    this.places = this.dirs.map((d) => `file:${d.path}`);
    this.fileMode = opts.fileMode ?? null;
    this.sparse = opts.sparse ?? false;
    this.mountpoints = opts.mountpoints ?? [];
    this.warn = opts.warn ?? processWarning;
  }

  /**
   * The directory of `key`: the one that holds it already, else where new data of `size` bytes goes:
   * of the highest priority, the directory with the most free space that has room for it; a full store
   * is FULL, as Glance's StorageFull. (Synchronous: urlFor() answers with it before the write begins.)
   */
  private dirFor(key: string, size: number): string {
    if (this.dirs.length === 1) return this.dir;
    const holding = this.dirs.find((d) => existsSync(path.join(d.path, key)));
    if (holding) return holding.path;
    // Every directory exists from the first choice on, as Glance creates them at start; one that cannot
    // be created or read has no room.
    if (!this.dirsCreated) this.dirsCreated = this.dirs.every(({ path: dir }) => tryIt(() => mkdirSync(dir, { recursive: true })) !== null);
    for (const priority of [...new Set(this.dirs.map((d) => d.priority))]) {
      let best: { dir: string; free: number } | null = null;
      for (const { path: dir } of this.dirs.filter((d) => d.priority === priority)) {
        const info = tryIt(() => statfsSync(dir));
        if (!info) {
          if (!this.unreadable.has(dir)) this.warn(`filesystem_store_datadirs: ${dir} cannot be read; it takes no data`);
          this.unreadable.add(dir);
          continue;
        }
        this.unreadable.delete(dir);
        const free = info.bavail * info.bsize;
        if (free >= size && (!best || free > best.free)) best = { dir, free };
      }
      if (best) return best.dir;
    }
    throw new StoreError('FULL', `no directory of the store has room for ${size} bytes`);
  }

  /** The directory a write goes to: that of the url reserved for it (urlFor), else the choice now. */
  private dirOfWrite(key: string, at: string | undefined, size: number): string {
    if (at === undefined) return this.dirFor(key, size);
    const file = this.pathOf(at);
    if (path.basename(file) !== key) throw new StoreError('INVALID_URL', `${at} is not the place of ${key}`);
    return path.dirname(file);
  }

  /**
   * Creates a directory if needed. With a file mode that lets the group or others read, they may also
   * enter the directory (g+x, o+x), as Glance's store sets it (checked once per process).
   */
  private async prepareDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      // A place that can never be a directory (under a file): as glance_store disables adding to a
      // store it could not configure, writes are refused as such (410), not as a passing failure (503).
      if (err.code === 'ENOTDIR' || err.code === 'EEXIST')
        throw new StoreError('READ_ONLY', `the store directory ${dir} cannot be created: ${err.message}`, { cause: err });
      throw err;
    });
    const fileMode = this.fileMode;
    if (fileMode === null) return;
    let opened = this.dirsOpened.get(dir);
    if (!opened) {
      opened = (async () => {
        const mode = (await stat(dir)).mode & 0o7777;
        const wanted = mode | (fileMode & 0o070 ? 0o010 : 0) | (fileMode & 0o007 ? 0o001 : 0);
        if (wanted !== mode) await chmod(dir, wanted).catch((err: Error) => this.permissionsNotSet(dir, err));
      })().catch((err: unknown) => {
        this.dirsOpened.delete(dir);
        throw err;
      });
      this.dirsOpened.set(dir, opened);
    }
    await opened;
  }

  /** filesystem_store_file_perm on one file; a failure is a warning, as in Glance, never a failed write. */
  private async setFileMode(file: string): Promise<void> {
    if (this.fileMode !== null) await chmod(file, this.fileMode).catch((err: Error) => this.permissionsNotSet(file, err));
  }

  private permissionsNotSet(file: string, err: Error): void {
    this.warn(`filesystem_store_file_perm: could not set the permissions of ${file} (${err.message})`);
  }

  async write(key: string, source: Readable, opts: WriteOptions = {}): Promise<WriteResult> {
    const dir = this.dirOfWrite(key, opts.at, opts.sizeHint ?? 0);
    await this.prepareDir(dir);
    const final = path.join(dir, key);
    // A dot-name in the same directory: rename() is then atomic, and a crash leaves only a temp to sweep.
    const temp = path.join(dir, partialName(key));
    let size = 0;
    try {
      const handle = await open(temp, 'wx');
      try {
        // The bytes reach the disk before the name makes them visible.
        const out = new DurableFileWriter(handle, { sparse: this.sparse });
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
    return { url: urlOf(dir, key), size };
  }

  async list(prefix: string): Promise<string[]> {
    const names = new Set<string>();
    for (const { path: dir } of this.dirs) {
      for (const name of await namesIn(dir)) {
        // Dot-names are writes in progress (or their leftovers).
        if (!name.startsWith('.') && name.startsWith(prefix)) names.add(name);
      }
    }
    return [...names].sort();
  }

  async adopt(key: string, file: string, at?: string): Promise<WriteResult | null> {
    // A staged file is not sparse: with thin provisioning the data is written, leaving its zeros out.
    if (this.sparse) return null;
    const size = (await stat(file)).size;
    const dir = this.dirOfWrite(key, at, size);
    await this.prepareDir(dir);
    const temp = path.join(dir, partialName(key));
    try {
      // A second name for the same (already synced) bytes; rename makes it visible whole, as write() does.
      await link(file, temp);
      await this.setFileMode(temp);
      await rename(temp, path.join(dir, key));
    } catch (err) {
      await rm(temp, { force: true });
      // Another filesystem, or one without hard links: the caller copies instead.
      if (['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
      throw err;
    }
    return { url: urlOf(dir, key), size };
  }

  properties(): Record<string, unknown> {
    return { data_dir: this.dir, chunk_size: 65536, thin_provisioning: this.sparse };
  }

  /** The url an object of this key has, or would have if `sizeHint` bytes were written now (dirFor). */
  urlFor(key: string, sizeHint = 0): string {
    return urlOf(this.dirFor(key, sizeHint), key);
  }

  /**
   * The metadata a new location at `url` gets: the filesystem_store_metadata_file entry whose mountpoint
   * begins its path (as glance_store compares them, by text), for services that read the files
   * directly (Nova's file download); none without a match, with a warning as Glance logs an error.
   */
  locationMetadata(url: string): Record<string, unknown> {
    if (this.mountpoints.length === 0) return {};
    const file = this.pathOf(url);
    const entry = this.mountpoints.find((m) => file.startsWith(m.mountpoint));
    if (!entry) this.warn(`filesystem_store_metadata_file: no mountpoint holds ${file}; its location gets no metadata`);
    return entry ? { ...entry } : {};
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
    // unlink, not rm: rm answers a refused unlink with the error of its directory fallback (ENOTDIR of
    // scandir) instead of EPERM. A path under something that is no directory holds no file.
    await unlink(this.pathOf(url)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err;
    });
  }

  async stat(url: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(url))).size;
    } catch {
      return null;
    }
  }

  owns(url: string): boolean {
    return this.objectOf(url) !== null;
  }

  objectOf(url: string): string | null {
    try {
      return this.pathOf(url);
    } catch {
      return null;
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
   * never sweeps its own at a restart. Only partials of keys `keep` lets go (no write under way, from
   * the database), unchanged for `minAgeMs`, go.
   */
  async sweepOrphans(keep: KeepKey, minAgeMs: number): Promise<number> {
    return this.removePartials(async (partial) => !(await keep(partial.key)) && !(await this.partialIsLive(partial, minAgeMs)));
  }

  private async removePartials(dead: (partial: TempFile) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for (const partial of await this.partials()) {
      if (!(await dead(partial))) continue;
      await rm(partial.file, { force: true });
      removed += 1;
    }
    return removed;
  }

  /** The temp files in the directories, each with the key and the writer its name gives. */
  private async partials(): Promise<TempFile[]> {
    const found: TempFile[] = [];
    for (const { path: dir } of this.dirs) {
      for (const name of await namesIn(dir).catch(() => [] as string[])) {
        const partial = parsePartialName(name);
        if (partial) found.push({ file: path.join(dir, name), ...partial });
      }
    }
    return found;
  }

  /**
   * A temp file is live while another process of this host named in it runs (an upload may pause for
   * client_socket_timeout between bytes), or while it keeps changing. A process of another host sharing
   * the directory cannot be probed: its file is judged by its changes alone, and so is one of this
   * process (a leftover of an earlier process of the same pid, or a write of its own still changing).
   */
  private async partialIsLive(partial: TempFile, idleMs: number): Promise<boolean> {
    if (processTagGone(partial.writer)) return false;
    const info = await stat(partial.file).catch(() => null);
    // Kept for a day at most: the pid may have been taken since by a process that writes nothing.
    if (info !== null && processTagRunsBeside(partial.writer) && Date.now() - info.mtimeMs < OTHER_PROCESS_PARTIAL_MAX_IDLE_MS) return true;
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
    // A location must never reach outside this store's directories.
    if (!this.dirs.some((d) => d.path === path.dirname(file))) throw new StoreError('INVALID_URL', `${url} is outside the store`);
    return file;
  }
}

function tryIt<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch {
    return null;
  }
}

function urlOf(dir: string, key: string): string {
  return pathToFileURL(path.join(dir, key)).href;
}

/** The names in a directory; none when it does not exist (yet). */
async function namesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
}
