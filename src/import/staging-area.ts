import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FileStoreDriver } from '../stores/file.ts';
import { STAGED_OBJECT_PREFIX, Store } from '../stores/store.ts';
import { ingest, type IngestRequest, type IngestResult } from '../ingest/pipeline.ts';
import type { StagedFacts } from '../ingest/store-data.ts';

export type { StagedFacts };

/** Staged files remembered at once (a few hundred bytes each); the oldest are forgotten first. */
const MAX_KNOWN = 10_000;

/** A local copy of an object-stored staged image, for the import plugins that work on files. */
interface WorkCopy {
  file: string;
  size: number;
  mtimeMs: number;
}

/**
 * The staging area: where data waits between stage (or download) and the import into stores.
 *
 * - On files (`node_staging_uri`, `[os_glance_staging_store] filesystem_store_datadir`): one node's
 *   directory, objects named after image ids. An import of data staged on another node is forwarded to it.
 * - In an object store (S3 or Swift, `[os_glance_staging_store]` or the store `staging_store` names): every
 *   node sees the same staged data, so any node runs any import. Plugins get a local copy to work on.
 */
export class StagingArea {
  readonly store: Store;
  /** True when every node sees the same staged data (an object store): nothing is forwarded. */
  readonly shared: boolean;
  private readonly known = new Map<string, StagedFacts>();
  private readonly workCopies = new Map<string, WorkCopy>();

  private constructor(
    store: Store,
    private readonly hashAlgo: string,
    private readonly fileDriver: FileStoreDriver | null,
    /** Object staging only: where plugins get their local copies. */
    private readonly workDir: string,
    private readonly prefix: string,
  ) {
    this.store = store;
    this.shared = fileDriver === null;
  }

  static onFiles(dir: string, hashAlgo: string): StagingArea {
    const driver = new FileStoreDriver(dir);
    return new StagingArea(new Store('os_glance_staging_store', driver), hashAlgo, driver, driver.dir, '');
  }

  /** `dedicated`: the store holds staged data only (its own section); else it is an image store too. */
  static inStore(store: Store, opts: { workDir: string; hashAlgo: string; dedicated: boolean }): StagingArea {
    if (!store.writable || store.options.addDisabled !== undefined || !store.driver.capabilities.list) {
      throw new Error(`store ${store.id} cannot hold staged data (it must be writable, with adding enabled, and listable)`);
    }
    return new StagingArea(store, opts.hashAlgo, null, opts.workDir, opts.dedicated ? '' : STAGED_OBJECT_PREFIX);
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  /** The staged file itself (file staging), where a store on the same filesystem may adopt it. */
  path(imageId: string): string {
    if (!this.fileDriver) throw new Error('object staging has no local path; use checkOut()');
    return fileURLToPath(this.fileDriver.urlFor(imageId));
  }

  url(imageId: string): string {
    return this.store.urlFor(this.key(imageId));
  }

  /**
   * Streams data into staging through the same pipeline as any upload (both digests, the format
   * inspectors), and remembers what it learnt about a local file.
   */
  async write(req: Omit<IngestRequest, 'store' | 'hashAlgo' | 'formatCheck' | 'inspect'>): Promise<IngestResult> {
    const imageId = req.key;
    this.known.delete(imageId);
    const result = await ingest({ ...req, key: this.key(imageId), store: this.store, hashAlgo: this.hashAlgo, inspect: true });
    const written = this.fileDriver ? await stat(this.path(imageId)).catch(() => null) : null;
    if (written) {
      // Kept in memory only: after a restart (or in another process) an import reads the bytes again.
      if (this.known.size >= MAX_KNOWN) this.known.delete(this.known.keys().next().value!);
      this.known.set(imageId, { size: result.size, digests: result.digests!, report: result.report!, file: { ino: written.ino, mtimeMs: written.mtimeMs } });
    }
    return result;
  }

  /** The facts of the staged data, if they still describe the local file that is there now. */
  async facts(imageId: string): Promise<StagedFacts | null> {
    const facts = this.known.get(imageId);
    if (!facts) return null;
    const now = await stat(this.path(imageId)).catch(() => null);
    if (now && now.size === facts.size && now.ino === facts.file.ino && now.mtimeMs === facts.file.mtimeMs) return facts;
    this.known.delete(imageId);
    return null;
  }

  /** Size of the staged data, or null when nothing is staged. (async: a url that cannot be made rejects.) */
  async size(imageId: string): Promise<number | null> {
    return this.store.stat(this.url(imageId));
  }

  async read(imageId: string): Promise<Readable> {
    return this.store.read(this.url(imageId));
  }

  /** Whether a write of this image's staged data is still going (only local files can tell). */
  writeInProgress(imageId: string, idleMs: number): Promise<boolean> {
    return this.store.writeInProgress(this.key(imageId), idleMs);
  }

  /**
   * A local file of the staged data for the import plugins, which may rewrite it (or write `<id>.<suffix>`
   * files beside it). File staging: the staged file itself. Object staging: a copy, put back by checkIn();
   * a copy that fails or is stopped half-way is removed.
   */
  async checkOut(imageId: string, signal: AbortSignal): Promise<string> {
    if (this.fileDriver) return this.path(imageId);
    await mkdir(this.workDir, { recursive: true });
    const file = path.join(this.workDir, imageId);
    try {
      await pipeline(await this.read(imageId), createWriteStream(file), { signal });
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    const copied = await stat(file);
    this.workCopies.set(imageId, { file, size: copied.size, mtimeMs: copied.mtimeMs });
    return file;
  }

  /** Puts back what the plugins made of a checked-out copy (when they changed it) and drops the copy. */
  async checkIn(imageId: string, signal: AbortSignal): Promise<void> {
    const copy = this.workCopies.get(imageId);
    if (!copy) return;
    try {
      const now = await stat(copy.file);
      if (now.size !== copy.size || now.mtimeMs !== copy.mtimeMs) await this.store.write(this.key(imageId), createReadStream(copy.file), { signal });
    } finally {
      await this.release(imageId);
    }
  }

  /** Drops a checked-out copy without putting anything back (the plugins failed). */
  async release(imageId: string): Promise<void> {
    this.workCopies.delete(imageId);
    if (this.fileDriver) return;
    const names = await readdir(this.workDir).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n === imageId || n.startsWith(`${imageId}.`)).map((n) => rm(path.join(this.workDir, n), { force: true })));
  }

  /** The image a key of the staging store belongs to (a key without this area's prefix is an image id). */
  imageOf(key: string): string {
    return key.startsWith(this.prefix) ? key.slice(this.prefix.length) : key;
  }

  /** Names of everything staged: image ids, and `<id>.<suffix>` work files of plugins on local staging. */
  async names(): Promise<string[]> {
    const keys = (await this.store.list(this.prefix)) ?? [];
    return keys.map((key) => key.slice(this.prefix.length));
  }

  /** Removes what names() named (an image's staged data, or a work file), with any local work copy. */
  async remove(name: string): Promise<void> {
    this.known.delete(name);
    await this.store.delete(this.url(name));
    if (this.workCopies.has(name)) await this.release(name);
  }
}
