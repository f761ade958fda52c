import type { ImportDeps } from './deps.ts';

export const IMPORTING_TO_STORES = 'os_glance_importing_to_stores';
export const FAILED_IMPORT = 'os_glance_failed_import';

/** Keeps os_glance_importing_to_stores / os_glance_failed_import (sorted, comma-joined) up to date. */
export async function recordStoreProgress(
  deps: ImportDeps,
  imageId: string,
  change: { importing?: string[]; clearFailed?: string[]; done?: string; failed?: string },
): Promise<void> {
  const image = await deps.images.get(imageId);
  if (!image) return;
  const split = (v: string | undefined) => new Set((v ?? '').split(',').filter((x) => x !== ''));
  const importing = split(image.properties[IMPORTING_TO_STORES]);
  const failed = split(image.properties[FAILED_IMPORT]);
  for (const id of change.importing ?? []) importing.add(id);
  for (const id of change.clearFailed ?? []) failed.delete(id);
  if (change.done) importing.delete(change.done);
  if (change.failed) {
    importing.delete(change.failed);
    failed.add(change.failed);
  }
  await deps.images.setProperty(imageId, IMPORTING_TO_STORES, [...importing].sort().join(','));
  await deps.images.setProperty(imageId, FAILED_IMPORT, [...failed].sort().join(','));
}
