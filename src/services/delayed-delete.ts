import type { DelayedDeletesRepo } from '../db/repos/delayed-deletes.ts';
import type { ImageLocation } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import type { StoreRegistry } from '../stores/registry.ts';

/**
 * `gaze scrub --restore ID` (Glance's `glance-scrubber --restore`): an image deleted with delayed_delete
 * becomes active again, with the locations its deletion queued whose data is still whole. Glance's
 * restore makes the image active without its locations; here an image comes back only with data.
 * Returns the restored locations.
 */
export async function restoreDeletedImage(deps: { delayedDeletes: DelayedDeletesRepo; stores: StoreRegistry }, id: string): Promise<ImageLocation[]> {
  const found = await deps.delayedDeletes.find(id);
  if (!found) throw gazeError('RESTORE_IMAGE_NOT_FOUND', id);
  if (found.status !== 'pending_delete') throw gazeError('RESTORE_NOT_PENDING_DELETE', found.status);
  const whole: ImageLocation[] = [];
  for (const location of await deps.delayedDeletes.keptLocations(id)) {
    const store = deps.stores.forLocation(location);
    // Only data known to be gone is left behind (then removed): a store this node cannot ask stops the restore.
    if (!store) throw gazeError('RESTORE_STORE_UNKNOWN', id, location.url);
    // Data on a store this service never writes to (http) was never its to remove.
    if (!store.ownsData) {
      whole.push(location);
      continue;
    }
    const size = await store.stat(location.url).catch((err: unknown) => {
      throw gazeError('RESTORE_STORE_UNKNOWN', id, `${location.url} (${(err as Error).message})`);
    });
    if (size !== null && (found.size === null || size === found.size)) whole.push(location);
  }
  if (whole.length === 0) throw gazeError('RESTORE_NO_DATA', id);
  // The scrubber may have ended the delete meanwhile: then nothing changes.
  const restored = await deps.delayedDeletes.restore(
    id,
    whole.map((l) => l.id),
  );
  if (!restored) throw gazeError('RESTORE_NOT_PENDING_DELETE', 'deleted');
  return whole;
}
