import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gazeError } from '../domain/errors.ts';
import type { Image, ImageLocation } from '../domain/image.ts';
import { STAGED_OBJECT_PREFIX, type Store } from '../stores/store.ts';
import { HashingStream, type Digests } from './hashing.ts';
import { locationsSharing, type DataDeps } from './store-data.ts';
import { withoutPasswords } from '../config/redact.ts';

// Data that was not written here but registered as a location (JSON patch on /locations, or the
// locations API): which store vouches for it, how big it is, and its digests when they are wanted.

export interface CheckedLocation {
  location: ImageLocation;
  store: Store;
  size: number;
}

/** In multi-store mode a location names its store, as Glance adds it from the url. */
export function withStoreId(deps: Pick<DataDeps, 'stores'>, url: string, metadata: Record<string, unknown>): Record<string, unknown> {
  const store = deps.stores.multistore ? deps.stores.forLocation({ url, metadata: {} }) : undefined;
  return store ? { ...metadata, store: store.id } : { ...metadata };
}

/**
 * The location as it will be saved, once its store said how many bytes it holds. Refused with Glance's
 * 400 "Invalid location" when no configured store takes the url, when it is a file url (Glance refuses
 * them: a client must not point an image at the server's own disk), when an http url does not pass
 * the web-download filter, or when the store cannot tell a size. Beyond Glance: the size must be the
 * image's when it has one, and a url that another image's location holds in a store this service
 * writes to is refused (removing the location would delete that image's data), as is staged data.
 */
export async function checkExternalLocation(deps: DataDeps, image: Image, url: string, metadata: Record<string, unknown>): Promise<CheckedLocation> {
  const named = withStoreId(deps, url, metadata);
  const store = deps.stores.forLocation({ url, metadata: named });
  if (!store || store.type === 'file') throw gazeError('LOCATION_INVALID');
  // Another image's staged data, waiting in a store shared with images: never a location.
  if (store.driver.objectOf?.(url)?.startsWith(STAGED_OBJECT_PREFIX)) throw gazeError('LOCATION_INVALID');
  let size: number | null;
  try {
    size = await store.stat(url);
  } catch (err) {
    deps.log.info({ err }, `location ${withoutPasswords(url)} of image ${image.id} refused: its store cannot read it`);
    throw gazeError('LOCATION_INVALID');
  }
  if (size === null || size <= 0) throw gazeError('LOCATION_INVALID');
  if (image.size !== null && image.size !== size) throw gazeError('LOCATION_SIZE_MISMATCH', url, size, image.size);
  if (store.ownsData && (await locationsSharing(deps, store, url)).some((l) => l.imageId !== image.id)) throw gazeError('LOCATION_INVALID');
  return { location: { id: crypto.randomUUID(), url, metadata: named, status: 'active' }, store, size };
}

/** The data ended at another length than its store announced: it changed, or the transfer was cut. */
export class LocationSizeChanged extends Error {
  constructor(
    readonly url: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(`${url} held ${found} bytes, not the ${expected} its store announced`);
    this.name = 'LocationSizeChanged';
  }
}

/** Reads a location whole and computes its md5 and `algorithm` digests (on the hash workers). */
export async function digestLocation(store: Store, url: string, expectedSize: number, algorithm: string, signal: AbortSignal): Promise<Digests> {
  // Read as the image's size: a web server that sends more (or never stops) fails the read.
  const source = await store.read(url, undefined, expectedSize);
  // Made once the read began: a hasher nobody pipes would hold its hash worker's slots for good.
  const hasher = new HashingStream(['md5', algorithm]);
  let seen = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      done();
    },
  });
  await pipeline(source, hasher, sink, { signal });
  if (seen !== expectedSize) throw new LocationSizeChanged(url, expectedSize, seen);
  return hasher.digests;
}
