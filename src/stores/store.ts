import type { Readable } from 'node:stream';
import { guardBody } from '../net/body-guard.ts';
import { ABILITY_METHODS, StoreError, type ByteRange, type KeepKey, type StoreDriver, type WriteOptions, type WriteResult } from './driver.ts';

/** Where staged data waits in an object store shared with images: beside them, never under an image's own key. */
export const STAGED_OBJECT_PREFIX = 'os_glance_staging-';

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The facade every caller uses: checks keys and capabilities, and gives driver failures a typed code. */
export class Store {
  constructor(
    readonly id: string,
    readonly driver: StoreDriver,
    readonly options: {
      readOnly?: boolean;
      /** Why the store's options disable writing to it (glance_store's BadStoreConfiguration); reads go on. */
      addDisabled?: string;
      description?: string;
      countBytes?: (direction: 'in' | 'out', bytes: number) => void;
    } = {},
  ) {
    for (const [ability, methods] of Object.entries(ABILITY_METHODS)) {
      if (!driver.capabilities[ability as keyof typeof ABILITY_METHODS]) continue;
      const missing = methods.filter((m) => typeof driver[m] !== 'function');
      if (missing.length) throw new Error(`store driver ${driver.type} declares ${ability} but has no ${missing.join(', ')}()`);
    }
  }

  get type(): string {
    return this.driver.type;
  }
  /** False for a store whose data this service never writes (http): dropping a location leaves its data alone. */
  get ownsData(): boolean {
    return this.driver.capabilities.writable;
  }
  get writable(): boolean {
    return this.driver.capabilities.writable && !this.options.readOnly;
  }

  private refuseUnwritable(): void {
    if (!this.writable) throw new StoreError('READ_ONLY', `store ${this.id} is read-only`);
  }

  /**
   * A store whose options disable adding is still offered for imports and listed as writable, as
   * Glance offers it: each write fails as a read-only store's (an upload gets 410, an import fails that store).
   */
  private refuseAdding(): void {
    const disabled = this.options.addDisabled;
    if (disabled !== undefined) throw new StoreError('READ_ONLY', `store ${this.id}: adding images is disabled: ${disabled}`);
    this.refuseUnwritable();
  }

  /** Whether two urls of this store name one object (two spellings of it, or the same url). */
  sameObject(a: string, b: string): boolean {
    if (a === b) return true;
    const object = (url: string) => (this.driver.objectOf ? this.driver.objectOf(url) : url);
    const first = object(a);
    return first !== null && first === object(b);
  }

  write(key: string, source: Readable, opts?: WriteOptions): Promise<WriteResult> {
    return wrap(this.id, async () => {
      if (!SAFE_KEY.test(key)) throw new StoreError('INVALID_KEY', `invalid object key '${key}'`);
      this.refuseAdding();
      const written = await this.driver.write(key, source, opts);
      this.options.countBytes?.('in', written.size);
      return written;
    });
  }

  /** The driver's adopt() when it has one; null when the bytes must be written instead. */
  adopt(key: string, file: string, at?: string): Promise<WriteResult | null> {
    return wrap(this.id, async () => {
      if (!SAFE_KEY.test(key)) throw new StoreError('INVALID_KEY', `invalid object key '${key}'`);
      this.refuseAdding();
      const adopted = this.driver.capabilities.adopt ? await this.driver.adopt!(key, file, at) : null;
      if (adopted) this.options.countBytes?.('in', adopted.size);
      return adopted;
    });
  }

  /** Temporary files of interrupted writes, where the driver has them (0 otherwise). */
  sweepPartials(idleMs: number): Promise<number> {
    return wrap(this.id, async () => (this.driver.capabilities.localPartials ? this.driver.sweepPartials!(idleMs) : 0));
  }

  /** Whether another process's write of `key` is still going; drivers without local partials cannot tell (false). */
  writeInProgress(key: string, idleMs: number): Promise<boolean> {
    return wrap(this.id, async () => (this.driver.capabilities.localPartials ? this.driver.writeInProgress!(key, idleMs) : false));
  }

  /** Unfinished parts a dead write left in the store itself (multipart uploads), where the driver has them (0 otherwise). */
  sweepOrphans(keep: KeepKey, minAgeMs: number): Promise<number> {
    return wrap(this.id, async () => (this.driver.capabilities.orphans ? this.driver.sweepOrphans!(keep, minAgeMs) : 0));
  }

  /** The keys of the objects whose names begin with `prefix`; null when the driver cannot list. */
  list(prefix: string): Promise<string[] | null> {
    return wrap(this.id, async () => (this.driver.capabilities.list ? this.driver.list!(prefix) : null));
  }

  async close(): Promise<void> {
    if (this.driver.capabilities.closable) await this.driver.close!();
  }

  /** The metadata a new location at `url` gets: the store's id with several stores (Glance's `{"store": id}`), and the driver's own. */
  locationMetadata(url: string, multistore: boolean): Record<string, unknown> {
    return { ...this.driver.locationMetadata?.(url), ...(multistore ? { store: this.id } : {}) };
  }

  urlFor(key: string, sizeHint?: number): string {
    if (!SAFE_KEY.test(key)) throw new StoreError('INVALID_KEY', `invalid object key '${key}'`);
    // Asked for a new object's place only: a store that takes none says so first.
    this.refuseAdding();
    return this.driver.urlFor(key, sizeHint);
  }

  /**
   * The data at url. With `size` (the whole data's, the image's size), the bytes the read delivers (the
   * range, or all) count as read when the stream ends, and data this service does not own (a web
   * server's) that has another length fails the read, before its first byte where that can be seen, else
   * the stream, instead of passing for the image.
   */
  read(url: string, range?: ByteRange, size?: number): Promise<Readable> {
    return wrap(this.id, async () => {
      let stream = await this.driver.read(url, range, size);
      if (size === undefined) return stream;
      const length = range ? range.end - range.start + 1 : size;
      if (!this.ownsData) {
        stream = guardBody(stream, { expectedLength: length, maxBytes: length, readTimeoutMs: 0, url });
        // Data that fails before its first byte fails this read, so that the next location is tried
        // (nothing has gone to the reader yet). Only here: a file store's reader recycles its chunks
        // and must not be read ahead.
        await firstBytes(stream);
        // It may have failed since, in the same turn: the read fails then too.
        if (stream.errored) throw stream.errored;
      }
      const count = this.options.countBytes;
      if (count) stream.once('end', () => count('out', length));
      return stream;
    });
  }

  delete(url: string): Promise<void> {
    return wrap(this.id, async () => {
      this.refuseUnwritable();
      return this.driver.delete(url);
    });
  }

  stat(url: string): Promise<number | null> {
    return wrap(this.id, () => this.driver.stat(url));
  }
}

async function wrap<T>(storeId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreError) {
      err.storeId ??= storeId;
      throw err;
    }
    const e = err as NodeJS.ErrnoException;
    const code =
      // A file size limit (EFBIG) is full as well, as glance_store's file store says it.
      e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'EFBIG'
        ? 'FULL'
        : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
          ? 'PERMISSION'
          : e.code === 'ENOENT'
            ? 'NOT_FOUND'
            : e.name === 'AbortError'
              ? 'ABORTED'
              : 'FAILED';
    const mapped = new StoreError(code, `store ${storeId}: ${e.message}`, { cause: err });
    mapped.storeId = storeId;
    throw mapped;
  }
}

/** Resolves once the stream has data buffered (or has ended), rejects if it fails first; nothing is consumed. */
function firstBytes(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      stream.off('readable', ready).off('error', settle).off('close', closed);
      if (err) {
        stream.destroy();
        reject(err);
      } else {
        // Until its reader listens (a moment later), an error must not go unheard: it would end the process.
        stream.on('error', () => {});
        resolve();
      }
    };
    const ready = () => settle();
    const closed = () => settle(new Error('the data stream closed before its first byte'));
    stream.on('readable', ready).on('error', settle).on('close', closed);
  });
}
