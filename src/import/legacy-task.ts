import type { TaskRow } from '../db/repos/tasks.ts';
import { assertFormatsForData, moveTo, UPLOAD_NODE, type Image } from '../domain/image.ts';
import { scrubLocation, storeAndActivate } from '../ingest/store-data.ts';
import { safeDownload } from '../net/safe-download.ts';
import { imageDataPayload, imageDeletedPayload, imagePayload } from '../notify/payloads.ts';
import { ImportStopped } from './failures.ts';
import { succeed, type FinishDeps } from './finish.ts';
import type { TaskJob, TaskKind } from './task-kind.ts';

/** The legacy tasks API's `import` task. */
export const legacyImport: TaskKind = {
  run: async (job) => succeed(job.finish, job.task, await downloadIntoNewImage(job)),
  revert: deleteOwnImage,
};

/** The task made its image for itself: like Glance's revert, an image that did not turn active goes with the task. */
async function deleteOwnImage({ deps }: FinishDeps, _task: TaskRow, image: Image | null): Promise<string | null> {
  if (!image || image.status === 'active') return null;
  const locations = await deps.images.markDeleted(image.id);
  if (!locations) return null;
  for (const location of locations) await scrubLocation(deps, location);
  deps.notifier.info('image.delete', imageDeletedPayload(image));
  return `The image ${image.id} created by this task was deleted.`;
}

/**
 * Creates an image from `image_properties`, downloads `import_from` through the filtered client
 * straight into the default store, and activates it. Returns the image id.
 */
async function downloadIntoNewImage(job: TaskJob): Promise<string> {
  const { deps, task, signal } = job;
  const input = JSON.parse(task.input!) as Record<string, unknown>;
  for (const key of ['import_from', 'import_from_format', 'image_properties']) {
    if (!(key in input)) throw new ImportStopped(`Input does not contain '${key}' field`);
  }
  const uri = String(input.import_from);
  if (uri.startsWith('file:')) throw new ImportStopped('File based imports are not allowed. Please use a non-local source of image data.');
  if (!/^https?:\/\//.test(uri))
    throw new ImportStopped("The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']");
  const properties = input.image_properties;
  if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) throw new ImportStopped("'image_properties' must be an object");
  let image: Image;
  if (task.image_id) {
    image = await deps.images.require(task.image_id);
  } else {
    // The submitter's rights (property protections, visibility, owner); a task resumed by another
    // process no longer knows them, and gets a member's.
    const submitter = { roles: job.caller?.roles ?? ['member', 'reader'], isAdmin: job.caller?.isAdmin ?? false };
    image = await job.createImage(task.owner, properties as Record<string, unknown>, submitter);
    await deps.tasks.transition(task.id, ['processing'], { image_id: image.id });
    task.image_id = image.id;
    job.trackImage(image.id);
  }
  // As an upload: formats before any data, and the project's quotas (checked before the image takes
  // data, then against the announced size, and the stream cut where they end).
  assertFormatsForData(image);
  const budget =
    image.status === 'saving' ? await deps.quotas.storeBudget(image.owner, image.id) : await deps.quotas.admitWrite(image.owner, image.id, 'store');
  // The image names its writer, as an upload does: a node that starts meanwhile must not take this live
  // write for one a crash left behind (a resumed task names itself in place of the dead one).
  const writer = { [UPLOAD_NODE]: job.opts.nodeId };
  const started =
    image.status === 'saving'
      ? await deps.images.updateFields(image.id, 'saving', {}, writer)
      : await deps.images.updateFields(image.id, 'queued', moveTo('saving'), writer);
  if (!started) throw new ImportStopped(`Image ${image.id} is ${image.status}; the import cannot start.`);
  // Glance's notifications of this task, in its order: the save to saving, the data's events, and the
  // two saves of its flow once the image is active.
  const saving = (await deps.images.get(image.id)) ?? image;
  deps.notifier.info('image.update', imagePayload(saving));
  deps.notifier.info('image.prepare', imageDataPayload(saving));
  const response = await safeDownload(uri, { ...job.opts.download, maxBytes: deps.settings.imageSizeCap, signal });
  if (budget && response.contentLength !== null && response.contentLength > budget.bytes) {
    response.body.destroy();
    throw budget.exceeded(response.contentLength);
  }
  await storeAndActivate(deps, image, response.body, deps.stores.default(), 'saving', signal, response.contentLength ?? undefined, budget);
  const active = (await deps.images.get(image.id)) ?? image;
  deps.notifier.info('image.upload', imageDataPayload(active));
  deps.notifier.info('image.activate', imagePayload(active));
  deps.notifier.info('image.update', imagePayload(active));
  deps.notifier.info('image.update', imagePayload(active));
  return image.id;
}
