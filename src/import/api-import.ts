import { IMPORT_LOCK, moveTo, STAGE_HOST } from '../domain/image.ts';
import { storeProgress } from '../domain/import-progress.ts';
import { notifyImage } from '../notify/image-events.ts';
import { imagePayload } from '../notify/payloads.ts';
import { ImportStopped } from './failures.ts';
import { fanOut } from './fan-out.ts';
import { revertImport, succeed } from './finish.ts';
import { parseImportInput, type ImportInput, type ImportJob } from './job.ts';
import { IMPORT_METHODS } from './methods/index.ts';
import { runPlugins } from './run-plugins.ts';
import type { TaskJob, TaskKind } from './task-kind.ts';
import type { ClaimWrite } from '../quota/quotas.ts';

/** The interoperable import's task (`api_image_import`): every import method, the same way. */
export const apiImport: TaskKind = {
  run: (job) => runImport({ ...job, input: parseImportInput(job.task.input) }),
  revert: (f, task, image) => revertImport(f, task, image, readableInput(task.input)),
  method: (task) => readableInput(task.input).import_req?.method.name ?? 'unknown',
};

/** A stored input that cannot be read leaves nothing to put back, but the revert itself goes on. */
function readableInput(text: string | null): Partial<ImportInput> {
  try {
    return parseImportInput(text);
  } catch {
    return {};
  }
}

/** The one sequence of every import: start, stage (by method), plugins, quotas, fan-out (which activates), succeed. */
async function runImport(job: ImportJob & Pick<TaskJob, 'finish'>): Promise<void> {
  const { deps, input, task } = job;
  const method = IMPORT_METHODS[input.import_req.method.name];
  if (!method) throw new ImportStopped(`Import method ${input.import_req.method.name} is not supported.`);
  let image = await deps.images.require(input.image_id);
  if (image.properties[IMPORT_LOCK] !== task.id) throw new ImportStopped('Task was aborted externally');
  const targets = input.backend.map((id) => {
    const store = id === null ? deps.stores.default() : deps.stores.get(id);
    if (!store) throw new ImportStopped(`Store ${id} is not enabled on this node.`);
    return store;
  });
  const storeIds = input.backend.filter((id): id is string => id !== null);

  // One write starts the import: the status (a copy leaves it), the stores it writes to, and the end of
  // any stage host (as Glance pops it at every import's start; a stage's writer ends with the status).
  const begin = method.copying || image.status === 'importing' ? null : moveTo('importing');
  const starting = { ...storeProgress(image.properties, { importing: storeIds, clearFailed: storeIds }), [STAGE_HOST]: null };
  const start: ClaimWrite = (within) => deps.images.updateFields(image.id, begin ? method.from : null, begin ?? {}, starting, { within });
  // Checked when it first starts taking data; a start resumed after a restart counted itself already.
  const firstStart = method.takesData && (method.copying || image.status !== 'importing');
  if (!(await (firstStart ? deps.quotas.claimTakingData(image.owner, start, { staging: true }) : start()))) {
    const now = await deps.images.require(image.id); // deleted meanwhile: says so
    throw new ImportStopped(`Image ${image.id} is ${now.status}, not ${method.from}; the import cannot start.`);
  }
  image = await deps.images.require(input.image_id);
  deps.notifier.info('image.update', imagePayload(image));

  const staged = await method.stage(job, image);
  image = method.runsPlugins ? await runPlugins(job, staged.image) : staged.image;
  const stagedSize = await job.staging.size(image.id);
  if (stagedSize === null) throw new ImportStopped(`No staged data found for image ${image.id}; stage it again.`);
  // Every copy counts against the project's storage: reserved first, so that imports and copies running
  // side by side see each other, then checked before the first byte is written. A copy adds to the
  // image's existing data; an import replaces whatever the image had.
  const adding = stagedSize * targets.length;
  const existing = method.copying ? (image.size ?? 0) * image.locations.filter((l) => l.status === 'active').length : 0;
  await deps.quotas.hold(image.owner, image.id, [method.copying ? 'active' : 'importing'], { reserved_bytes: adding }, { stored: adding + existing });

  await fanOut(job, image, targets, { copying: method.copying, expected: staged.expected, stagedSize });
  // Glance's import ends by checking the image is active, with a save (and so an image.update) of its own.
  await notifyImage(deps, 'image.update', image.id);
  await job.staging.remove(image.id);
  await succeed(job.finish, task, image.id);
}
