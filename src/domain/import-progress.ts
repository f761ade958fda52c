import type { ImageProperties } from './image.ts';
// Which stores an import still writes to and which failed, as Glance shows them on the image:
// os_glance_importing_to_stores / os_glance_failed_import, sorted and comma-joined.

export const IMPORTING_TO_STORES = 'os_glance_importing_to_stores';
export const FAILED_IMPORT = 'os_glance_failed_import';

export interface StoreProgressChange {
  /** Stores the import starts writing to. */
  importing?: string[];
  /** Stores whose earlier failure no longer counts (they are tried again). */
  clearFailed?: string[];
  done?: string;
  failed?: string[];
  /** Stores the import no longer writes to, without having failed there (it stopped before their turn). */
  dropped?: string[];
}

/** The stores one of the two progress properties lists. */
export function storesListed(properties: Readonly<ImageProperties>, property: typeof IMPORTING_TO_STORES | typeof FAILED_IMPORT): Set<string> {
  return new Set((properties[property] ?? '').split(',').filter((x) => x !== ''));
}

/** The two progress properties after `change`, from the image's properties before it. */
export function storeProgress(properties: Readonly<ImageProperties>, change: StoreProgressChange): Record<string, string> {
  const importing = storesListed(properties, IMPORTING_TO_STORES);
  const failed = storesListed(properties, FAILED_IMPORT);
  for (const id of change.importing ?? []) importing.add(id);
  for (const id of change.clearFailed ?? []) failed.delete(id);
  if (change.done) importing.delete(change.done);
  for (const id of change.dropped ?? []) importing.delete(id);
  for (const id of change.failed ?? []) {
    importing.delete(id);
    failed.add(id);
  }
  return { [IMPORTING_TO_STORES]: [...importing].sort().join(','), [FAILED_IMPORT]: [...failed].sort().join(',') };
}
