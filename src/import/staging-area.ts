import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FileStoreDriver } from '../stores/file.ts';
import { Store } from '../stores/store.ts';
import { ingest, type IngestRequest, type IngestResult } from '../ingest/pipeline.ts';
import type { StagedFacts } from '../ingest/store-data.ts';

export type { StagedFacts };

/** Staged files remembered at once (a few hundred bytes each); the oldest are forgotten first. */
const MAX_KNOWN = 10_000;

/**
 * The staging area (`node_staging_uri`): a file store named `os_glance_staging_store` whose objects are
 * named after image ids. Staged data waits here between stage (or download) and the import into stores.
 */
export class StagingArea {
  readonly driver: FileStoreDriver;
  readonly store: Store;
  private readonly known = new Map<string, StagedFacts>();

  constructor(
    dir: string,
    private readonly hashAlgo: string,
  ) {
    this.driver = new FileStoreDriver(dir);
    this.store = new Store('os_glance_staging_store', this.driver);
  }

  get dir(): string {
    return this.driver.dir;
  }

  /** The staged file itself, for the import plugins that rewrite it. */
  path(imageId: string): string {
    return fileURLToPath(this.url(imageId));
  }

  url(imageId: string): string {
    return this.driver.urlFor(imageId);
  }

  /**
   * Streams data into staging through the same pipeline as any upload (both digests, the format
   * inspectors), and remembers what it learnt about the file.
   */
  async write(req: Omit<IngestRequest, 'store' | 'hashAlgo' | 'formatCheck' | 'inspect'>): Promise<IngestResult> {
    this.known.delete(req.key);
    const result = await ingest({ ...req, store: this.store, hashAlgo: this.hashAlgo, inspect: true });
    const written = await stat(this.path(req.key)).catch(() => null);
    if (written) {
      // Kept in memory only: after a restart (or in another process) an import reads the bytes again.
      if (this.known.size >= MAX_KNOWN) this.known.delete(this.known.keys().next().value!);
      this.known.set(req.key, { size: result.size, digests: result.digests!, report: result.report!, file: { ino: written.ino, mtimeMs: written.mtimeMs } });
    }
    return result;
  }

  /** The facts of the staged data, if they still describe the file that is there now. */
  async facts(imageId: string): Promise<StagedFacts | null> {
    const facts = this.known.get(imageId);
    if (!facts) return null;
    const now = await stat(this.path(imageId)).catch(() => null);
    if (now && now.size === facts.size && now.ino === facts.file.ino && now.mtimeMs === facts.file.mtimeMs) return facts;
    this.known.delete(imageId);
    return null;
  }

  /** Size of the staged data, or null when nothing is staged. */
  size(imageId: string): Promise<number | null> {
    return this.driver.stat(this.url(imageId));
  }

  read(imageId: string): Promise<Readable> {
    return this.store.read(this.url(imageId));
  }

  async remove(imageId: string): Promise<void> {
    this.known.delete(imageId);
    await this.driver.delete(this.url(imageId));
  }
}
