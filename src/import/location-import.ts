import { Ajv } from 'ajv';
import { assertFormatsForData, IMPORT_LOCK, locationActivation, moveTo } from '../domain/image.ts';
import { checkExternalLocation, digestLocation } from '../ingest/external-location.ts';
import { notifyImage } from '../notify/image-events.ts';
import type { Store } from '../stores/store.ts';
import { ImportStopped } from './failures.ts';
import { revertImport, succeed } from './finish.ts';
import type { ImportJob, LocationImportOptions } from './job.ts';
import type { TaskKind } from './task-kind.ts';
import { withoutPasswords } from '../config/redact.ts';

// The `location_import` task of the locations API (Glance 2024.2, POST /v2/images/{id}/locations): data
// that a client (Nova, Cinder) wrote itself becomes the image's. Its location is checked like a JSON-patch
// location; with do_secure_hash its digests are computed from the data: before activation when the
// client vouched for a digest (which must then match), after it otherwise (Glance's order).

export interface LocationImportInput {
  image_id: string;
  loc_url: string;
  validation_data: { os_hash_algo?: string; os_hash_value?: string };
}

const validInput = new Ajv({ allErrors: false }).compile<LocationImportInput>({
  type: 'object',
  required: ['image_id', 'loc_url', 'validation_data'],
  properties: {
    image_id: { type: 'string' },
    loc_url: { type: 'string' },
    validation_data: { type: 'object', properties: { os_hash_algo: { type: 'string' }, os_hash_value: { type: 'string' } } },
  },
});

/** The task input as stored: checked, not trusted (another process may resume the task). */
export function parseLocationInput(text: string | null): LocationImportInput {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    value = null;
  }
  if (!validInput(value)) throw new ImportStopped('The task input of this location import cannot be read.');
  return value;
}

type LocationJob = Pick<ImportJob, 'deps' | 'task' | 'signal'> & { options: LocationImportOptions };

export const locationImport: TaskKind = {
  run: async (job) => {
    const imageId = await addLocation({ ...job, options: job.opts.locationImport });
    // The location is the image's data: announced as its activation, as the other imports do theirs.
    await notifyImage(job.deps, 'image.activate', imageId);
    await succeed(job.finish, job.task, imageId);
  },
  // The image is put back as any import's; there are no stores or formats of its own to restore.
  revert: (f, task, image) => revertImport(f, task, image, {}),
};

/** Resolves with the image id once the image is active (and its digests known, when computed). */
async function addLocation(job: LocationJob): Promise<string> {
  const { deps, task, options } = job;
  const input = parseLocationInput(task.input);
  let image = await deps.images.require(input.image_id);
  if (image.properties[IMPORT_LOCK] !== task.id) throw new ImportStopped('Task was aborted externally');
  // Active with this location: a run that activated it and stopped before it ended (resumed here).
  // Otherwise the image got data another way (a stage or an upload) while the task waited for its turn.
  const resumed = image.status === 'active' && image.locations.some((l) => l.url === input.loc_url);
  if (image.status !== 'queued' && image.status !== 'importing' && !resumed) {
    throw new ImportStopped(`Image ${image.id} is ${image.status} now; its location was not added.`);
  }
  const algorithm = input.validation_data.os_hash_algo ?? deps.settings.hashingAlgorithm;
  // A digest the image has expected since it was created must be met too (Gaze's check, end to end).
  const expected = image.status !== 'active' && image.os_hash_algo === algorithm ? (image.os_hash_value ?? undefined) : undefined;
  const given = input.validation_data.os_hash_value;
  if (given !== undefined && expected !== undefined && given !== expected) throw new ImportStopped('os_hash_value is already set with a different value');
  const vouched = given ?? expected;

  if (image.status === 'queued' || image.status === 'importing') {
    assertFormatsForData(image);
    const { location, store, size } = await checkExternalLocation(deps, image, input.loc_url, {});
    const verifyFirst = options.secureHash && vouched !== undefined;
    const from = verifyFirst ? 'importing' : 'queued';
    if (verifyFirst && image.status === 'queued' && !(await deps.images.updateFields(image.id, 'queued', moveTo('importing')))) {
      throw new ImportStopped(`Image ${image.id} changed while its location was being added.`);
    }
    const reserved = await deps.images.reserveLocation(image.id, location.url, location.metadata, [from]);
    let digests: Record<string, string> = {};
    if (verifyFirst) {
      const computed = await digestWithRetries(job, store, location.url, size, algorithm).catch((err: unknown) => {
        if (job.signal.aborted) throw err;
        job.deps.log.warn({ err, image: image.id }, 'reading a new location to verify its digest failed');
        throw new ImportStopped(`Hash calculation failed for image ${image.id} data`);
      });
      if (computed[algorithm] !== vouched) {
        throw new ImportStopped(`os_hash_value: (${vouched}) not matched with actual os_hash_value: (${computed[algorithm]})`);
      }
      digests = { checksum: computed.md5!, os_hash_algo: algorithm, os_hash_value: vouched };
    } else if (vouched !== undefined) {
      digests = { os_hash_algo: algorithm, os_hash_value: vouched };
    }
    await deps.images.activateWithData(image.id, locationActivation(size, digests), reserved.id, from);
    image = await deps.images.require(image.id);
  }

  if (options.secureHash && image.status === 'active' && image.os_hash_value === null) {
    // Active already; the digests follow. A failure leaves the image active without them, as in Glance.
    const location = image.locations.find((l) => l.url === input.loc_url);
    const store = location && deps.stores.forLocation(location);
    try {
      if (!location || !store) throw new Error(`the location ${input.loc_url} is gone`);
      const computed = await digestWithRetries(job, store, location.url, image.size ?? 0, algorithm);
      await deps.images.updateFields(image.id, 'active', { checksum: computed.md5!, os_hash_algo: algorithm, os_hash_value: computed[algorithm]! });
    } catch (err) {
      if (job.signal.aborted) throw err;
      deps.log.warn({ err, image: image.id }, `Hash calculation failed for image ${image.id} data`);
    }
  }
  return image.id; // succeed() ends the task, then releases the lock
}

async function digestWithRetries(job: LocationJob, store: Store, url: string, size: number, algorithm: string): Promise<Record<string, string>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await digestLocation(store, url, size, algorithm, job.signal);
    } catch (err) {
      if (job.signal.aborted || attempt >= Math.max(1, job.options.retries)) throw err;
      job.deps.log.info(
        { err, attempt, task: job.task.id, image: job.task.image_id },
        `reading ${withoutPasswords(url)} to compute its digests failed; trying again`,
      );
    }
  }
}
