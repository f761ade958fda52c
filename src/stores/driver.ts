import type { Readable } from 'node:stream';
import { withoutPasswords } from '../config/redact.ts';

/**
 * What a driver can do, as data: the facade (Store) reads these, never the driver's class. A driver that
 * declares an ability implements the method named beside it (checked when the facade is built).
 */
export interface StoreCapabilities {
  /** False for read-only stores (http): the facade refuses writes and deletes before calling the driver. */
  writable: boolean;
  /** Can serve a byte range without reading from the start. */
  rangeRead: boolean;
  /** adopt(): takes a finished local file as an object without copying its bytes. */
  adopt: boolean;
  /** sweepPartials() and writeInProgress(): writes go through local temporary files that a crash can orphan. */
  localPartials: boolean;
  /** close(): holds connections (agents, pools) to release when the service stops. */
  closable: boolean;
  /** list(): can name the objects it holds (a staging area sweeps what no import waits for). */
  list: boolean;
  /** sweepOrphans(): writes keep unfinished parts in the store itself (multipart uploads, segments, temporary files) that a crash can orphan, on any host. */
  orphans: boolean;
}

/** The optional methods and the ability that promises each. */
export const ABILITY_METHODS = {
  adopt: ['adopt'],
  localPartials: ['sweepPartials', 'writeInProgress'],
  closable: ['close'],
  list: ['list'],
  orphans: ['sweepOrphans'],
} as const;

export interface ByteRange {
  start: number;
  end: number;
} // inclusive, as in HTTP

/** Whether the unfinished parts of a write of this key are to be kept (see StoreDriver.sweepOrphans). */
export type KeepKey = (key: string) => boolean | Promise<boolean>;

/**
 * How a driver reports what went wrong beside an operation that still succeeds (a segment it could not
 * delete, permissions it could not set): the service's log, through the registry.
 */
export type Warn = (message: string) => void;

/** Where a driver made outside the registry (a test, a tool) warns. */
export const processWarning: Warn = (message) => process.emitWarning(message);

export interface WriteOptions {
  signal?: AbortSignal;
  /** The size the data will have, when known beforehand (drivers that buffer parts size them by it). */
  sizeHint?: number;
  /** The url urlFor() gave for this write, reserved before it began: a driver with several places writes there. */
  at?: string;
}

export interface WriteResult {
  url: string;
  size: number;
}

/**
 * What every storage backend implements. Keys are image ids (plain, safe names); urls are what the driver
 * returned from write(). The shared conformance suite in test/stores/ holds every driver to this contract.
 */
export interface StoreDriver {
  readonly type: string;
  readonly capabilities: StoreCapabilities;
  /**
   * Where this store keeps its objects (`file:/abs/dir`, `s3:host/bucket`, `swift:account/container`),
   * to tell stores that would share them apart (see places.ts); none for data it does not own.
   */
  readonly places: readonly string[];
  /**
   * Streams `source` into the store. The object is visible under the returned url only once it is whole:
   * on a source error or an abort nothing is left behind, not even a partial temporary object.
   */
  write(key: string, source: Readable, opts?: WriteOptions): Promise<WriteResult>;
  /**
   * The url an object of this key has (or would have) in this store: known before the write begins.
   * A driver with several places (a file store's directories) chooses one for `sizeHint` bytes; the
   * write is then given that url (WriteOptions.at).
   */
  urlFor(key: string, sizeHint?: number): string;
  /**
   * The data at url, or the given range of it. Throws StoreError NOT_FOUND when absent. `wholeLength`:
   * the length the whole data must have, which a driver of data it does not own checks before any byte.
   */
  read(url: string, range?: ByteRange, wholeLength?: number): Promise<Readable>;
  /** Removes the data; absent data is not an error. */
  delete(url: string): Promise<void>;
  /** Size in bytes, or null when absent. */
  stat(url: string): Promise<number | null>;
  /** Whether this driver's url scheme and place match (used to route a location to its store). */
  owns(url: string): boolean;
  /**
   * The object a url of this store names (its key, or its file), the same for every spelling of it
   * (Glance's URL forms with credentials and host, another case of the scheme): two locations name one
   * object when this is equal. Absent: the url itself.
   */
  objectOf?(url: string): string | null;
  /**
   * Takes a finished, synced local file as the object `key` without copying its bytes, when the driver
   * can (the file store, on the same filesystem: a hard link). Null: it cannot; write() it instead.
   * The file itself is left where it is.
   */
  adopt?(key: string, file: string, at?: string): Promise<WriteResult | null>;
  /** Removes temporary files of writes that ended without finishing (untouched for `idleMs`); how many. */
  sweepPartials?(idleMs: number): Promise<number>;
  /** Whether a write of `key` is still going (its temporary file changed within `idleMs`). */
  writeInProgress?(key: string, idleMs: number): Promise<boolean>;
  /**
   * Removes the unfinished parts of writes that died, except for keys `keep` says to keep (being
   * written, or no image of this service's: another service's write in a shared bucket) and writes
   * begun less than `minAgeMs` ago; how many.
   */
  sweepOrphans?(keep: KeepKey, minAgeMs: number): Promise<number>;
  /** The keys of the whole objects this store holds that begin with `prefix` (no temporary or segment objects). */
  list?(prefix: string): Promise<string[]>;
  /** Releases connections; the driver is not used afterwards. */
  close?(): Promise<void>;
  /** The `properties` GET /v2/info/stores/detail shows for this store, with Glance's keys for its type. */
  properties?(): Record<string, unknown>;
  /** The metadata of a new location at `url` beyond the store's id (a file store's mountpoint entry); none by default. */
  locationMetadata?(url: string): Record<string, unknown>;
}

export type StoreErrorCode = 'NOT_FOUND' | 'FULL' | 'PERMISSION' | 'UNAVAILABLE' | 'READ_ONLY' | 'INVALID_KEY' | 'INVALID_URL' | 'ABORTED' | 'FAILED';

// What a client is told for each code: the detail (paths, URLs, a server's own text) stays in the log.
const PUBLIC_PHRASES: Record<StoreErrorCode, string> = {
  NOT_FOUND: 'the data was not found',
  FULL: 'no space is left',
  PERMISSION: 'the storage refused access (read-only or not writable)',
  UNAVAILABLE: 'the storage is unavailable',
  READ_ONLY: 'the store is read-only',
  INVALID_KEY: 'invalid object name',
  INVALID_URL: 'the location does not belong to this store',
  ABORTED: 'the operation was aborted',
  FAILED: 'the operation failed',
};

export class StoreError extends Error {
  /** The store the facade was acting for, once known. */
  storeId: string | null = null;

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    // A location's URL may hold a password (Glance's http and swift locations): never in a message.
    super(withoutPasswords(message), options);
    this.name = 'StoreError';
  }

  /** What a client may see: the store and what went wrong, never a path, a URL or a server's text. */
  get publicMessage(): string {
    return `${this.storeId ? `store ${this.storeId}` : 'the store'}: ${PUBLIC_PHRASES[this.code]}`;
  }
}

// Connection failures of Node's sockets and undici, as the drivers of remote stores meet them.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Whether an error is a network failure: its own code, an AggregateError's (happy eyeballs), or its cause's. */
export function isNetworkFailure(err: unknown): boolean {
  const e = err as { code?: string; errors?: unknown[]; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const codes = [e.code, ...(e.errors ?? []).map((x) => (x as { code?: string }).code), (e.cause as { code?: string } | undefined)?.code];
  return codes.some((c) => c !== undefined && NETWORK_CODES.has(c));
}
