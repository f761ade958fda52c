import { resetToQueued } from '../domain/image.ts';
import { scrubLocation } from '../ingest/store-data.ts';
import type { StagingArea } from '../import/staging-area.ts';
import type { ServiceDeps } from './deps.ts';
import { STAGE_HOST } from './staging.ts';

// A temp file unchanged for this long belongs to no running write (another worker's writes touch theirs).
const LIVE_WRITE_MS = 60_000;

/**
 * After a crash or kill: uploads and stages that were streaming are gone, so their images go back to
 * `queued` (never stuck in `saving`/`uploading`), and half-written files are removed (orphaned staged
 * files are the import runner's periodic sweep, queued data the scrubber's). With several
 * workers sharing the directories, a write whose temp file is still growing is left alone.
 */
export async function recoverInterruptedUploads(deps: ServiceDeps, staging: StagingArea, selfUrl: string | null): Promise<void> {
  const { images, stores } = deps;
  for (const id of await images.idsInStatus('saving')) {
    const live = await Promise.all(stores.all().map((store) => store.writeInProgress(id, LIVE_WRITE_MS)));
    if (live.some(Boolean)) continue;
    if (!(await images.updateFields(id, 'saving', resetToQueued()))) continue;
    // Whatever the interrupted upload had already put in place goes.
    for (const location of await images.locationsOf(id)) {
      await images.discardLocation(location.id);
      await scrubLocation(deps, location);
    }
  }
  for (const id of await images.idsInStatus('uploading')) {
    const stageHost = (await images.get(id))?.properties[STAGE_HOST];
    if (stageHost && stageHost !== selfUrl) continue; // staged on another worker: its data is there
    // A staging store that cannot answer now leaves the image as it is (the next start looks again).
    const staged = await staging.size(id).catch(() => undefined);
    if (staged !== null || (await staging.writeInProgress(id, LIVE_WRITE_MS))) continue;
    await images.updateFields(id, 'uploading', resetToQueued());
  }
  for (const store of [...stores.all(), staging.store]) await store.sweepPartials(LIVE_WRITE_MS);
}
