import type { Image } from '../domain/image.ts';
import { inspectFile } from '../formats/inspector.ts';
import { judge } from '../formats/verdict.ts';
import { importCaller, saveInput, type ImportJob } from './job.ts';

/**
 * The configured import plugins, in order, on the staged file (never for copy-image: those bytes are
 * the image's already). Each may replace the file and change the image; the next sees the result. On
 * object staging they work on a local copy, put back once all of them succeeded.
 */
export async function runPlugins(job: ImportJob, image: Image): Promise<Image> {
  const { deps, staging, input } = job;
  const plugins = job.opts.plugins;
  const roles = input.roles ?? [];
  if (plugins.length === 0) return image;
  if (!input.previous) {
    // A plugin may change the formats (image_conversion): a failed import puts the claimed ones back.
    input.previous = { disk_format: image.disk_format, container_format: image.container_format, properties: {} };
    await saveInput(job);
  }
  // What a plugin writes to staging must fit the project's staging quota as well as image_size_cap.
  const stageBudget = await deps.quotas.stageBudget(image.owner, image.id);
  const sizeCap = Math.min(deps.settings.imageSizeCap, stageBudget?.bytes ?? Infinity);
  const stagedPath = await staging.checkOut(image.id, job.signal);
  try {
    await runEach(job, image, { stagedPath, sizeCap, roles });
  } catch (err) {
    await staging.release(image.id);
    throw err;
  }
  await staging.checkIn(image.id, job.signal);
  return deps.images.require(image.id);
}

async function runEach(job: ImportJob, image: Image, opts: { stagedPath: string; sizeCap: number; roles: string[] }): Promise<void> {
  const { deps, signal } = job;
  const { stagedPath, sizeCap, roles } = opts;
  const protections = deps.propertyProtections;
  for (const plugin of job.opts.plugins) {
    const current = await deps.images.require(image.id);
    await plugin.run({
      image: current,
      stagedPath,
      roles,
      signal,
      sizeCap,
      updateImage: (fields) => deps.images.requireUpdate(image.id, 'importing', fields),
      setProperties: (props) => deps.images.requireUpdate(image.id, 'importing', {}, props),
      mayWriteProperty: (name, exists) => protections?.mayWrite(name, exists, importCaller(job.input)) ?? true,
      inspectFile,
      judge: (report, claimed) => judge(report, claimed, deps.settings.formatPolicy),
      warn: (message) => deps.log.warn({ task: job.task.id, image: image.id, plugin: plugin.name }, message),
    });
  }
}
