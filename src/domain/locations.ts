import { isDeepStrictEqual } from 'node:util';
import { gazeError } from './errors.ts';
import { DIGEST_HEX_LENGTH, type Image, type ImageLocation } from './image.ts';

/** A location as a client writes it in a JSON patch (already checked against the image schema). */
export interface LocationInput {
  url: string;
  metadata: Record<string, unknown>;
  validation_data?: Partial<Record<ValidationKey, string>>;
}

const VALIDATION_KEYS = ['checksum', 'os_hash_algo', 'os_hash_value'] as const;
type ValidationKey = (typeof VALIDATION_KEYS)[number];
export type ValidationData = Partial<Record<ValidationKey, string>>;

/** Glance's duplicate rule: the same url with the same metadata. */
export function sameLocation(a: Pick<ImageLocation, 'url' | 'metadata'>, b: Pick<ImageLocation, 'url' | 'metadata'>): boolean {
  return a.url === b.url && isDeepStrictEqual(a.metadata, b.metadata);
}

/** Python's `[a, b].insert(i, x)` position of a `/locations/<n|->` add; null when the segment is neither. */
export function addPosition(segment: string, count: number): number | null {
  if (segment === '-') return count;
  return /^[0-9]+$/.test(segment) ? Math.min(Number(segment), count) : null;
}

/** The index a `/locations/<n|->` remove names; null when there is no such location. */
export function removePosition(segment: string, count: number): number | null {
  if (segment === '-') return count - 1;
  if (!/^[0-9]+$/.test(segment)) return null;
  const index = Number(segment);
  return index < count ? index : null;
}

/** The url lists of two location sets hold the same urls, whatever their order (Glance's "metadata only" replace). */
export function sameUrls(a: Array<{ url: string }>, b: Array<{ url: string }>): boolean {
  const sorted = (list: Array<{ url: string }>) => list.map((l) => l.url).sort();
  return isDeepStrictEqual(sorted(a), sorted(b));
}

const isHex = (text: string) => /^(?:[0-9a-fA-F]{2})*$/.test(text);

/**
 * The image fields the `validation_data` of new locations would set, with Glance's rules: values that
 * equal the image's are fine anywhere; new values only while the image is queued, and well formed.
 * Throws 409 VALIDATION_DATA_CONFLICT with Glance's texts otherwise.
 */
export function validationDataChanges(image: Image, locations: LocationInput[], hashingAlgorithm: string): ValidationData {
  const given: ValidationData = {};
  for (const location of locations) {
    for (const key of VALIDATION_KEYS) {
      const value = location.validation_data?.[key];
      if (value === undefined) continue;
      if (given[key] !== undefined && given[key] !== value) throw gazeError('VALIDATION_DATA_CONFLICT', `Conflicting values for ${key}`);
      given[key] = value;
    }
  }
  const changes: ValidationData = {};
  for (const key of VALIDATION_KEYS) {
    const value = given[key];
    if (value === undefined || value === image[key]) continue;
    if (image[key]) throw gazeError('VALIDATION_DATA_CONFLICT', `${key} is already set with a different value`);
    changes[key] = value;
  }
  const keys = Object.keys(changes);
  if (keys.length === 0) return changes;
  if (image.status !== 'queued') {
    throw gazeError('VALIDATION_DATA_CONFLICT', `New value(s) for ${keys.join(', ')} may only be provided when image status is 'queued'`);
  }
  if (changes.checksum !== undefined) {
    if (!isHex(changes.checksum)) throw gazeError('VALIDATION_DATA_CONFLICT', `checksum (${changes.checksum}) is not a valid hexadecimal value`);
    if (changes.checksum.length !== 32) {
      throw gazeError('VALIDATION_DATA_CONFLICT', `checksum (${changes.checksum}) is not the correct size for md5 (should be 16 bytes)`);
    }
  }
  // The algorithm in force: the new one, or the one the image already names (Glance reads only the new one
  // and so refuses a new checksum next to an unchanged digest).
  const algo = changes.os_hash_algo ?? image.os_hash_algo;
  if (algo !== hashingAlgorithm) throw gazeError('VALIDATION_DATA_CONFLICT', `os_hash_algo must be ${hashingAlgorithm}, not ${String(algo ?? 'None')}`);
  const value = changes.os_hash_value ?? image.os_hash_value ?? '';
  if (!isHex(value)) throw gazeError('VALIDATION_DATA_CONFLICT', `os_hash_value (${value}) is not a valid hexadecimal value`);
  const want = (DIGEST_HEX_LENGTH[algo] ?? 0) / 2;
  if (value.length / 2 !== want) {
    throw gazeError('VALIDATION_DATA_CONFLICT', `os_hash_value (${value}) is not the correct size for ${algo} (should be ${want} bytes)`);
  }
  return changes;
}

/** Glance's checks of the digest given to the locations API: hex, of the length its algorithm (or the service's) makes. */
export function checkGivenDigest(given: { os_hash_algo?: string; os_hash_value?: string }, hashingAlgorithm: string): void {
  const value = given.os_hash_value;
  if (value === undefined) return;
  if (!isHex(value)) throw gazeError('BAD_REQUEST', `os_hash_value (${value}) is not a valid hexadecimal value`);
  const algorithm = given.os_hash_algo ?? hashingAlgorithm;
  const want = (DIGEST_HEX_LENGTH[algorithm] ?? 0) / 2;
  if (value.length / 2 !== want) {
    throw gazeError('BAD_REQUEST', `os_hash_value: (${value}) is not the correct size for (${algorithm}) (should be (${want}) bytes)`);
  }
}
