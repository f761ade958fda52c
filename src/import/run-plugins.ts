import type { Image } from '../domain/image.ts';
import { inspectFile } from '../formats/inspector.ts';
import { judge } from '../formats/verdict.ts';
import { IMAGE_DELETED, ImportStopped } from './failures.ts';
import { requireImage, saveInput, type ImportJob } from './job.ts';

/**
 * The configured import plugins, in order, on the staged file (never for copy-image: those bytes are
 * the image's already). Each may replace the file and change the image; the next sees the result.
 */
export async function runPlugins(job: ImportJob, image: Image): Promise<Image> {
  const { deps, staging, input, signal } = job;
  const plugins = job.opts.plugins;
  const roles = input.roles ?? [];
  const protections = deps.propertyProtections;
  if (plugins.length && !input.previous) {
    // A plugin may change the formats (image_conversion): a failed import puts the claimed ones back.
    input.previous = { disk_format: image.disk_format, container_format: image.container_format, properties: {} };
    await saveInput(job);
  }
  // What a plugin writes to staging must fit the project's staging quota as well as image_size_cap.
  const stageBudget = await deps.quotas.stageBudget(image.owner, image.id);
  const sizeCap = Math.min(deps.settings.imageSizeCap, stageBudget?.bytes ?? Infinity);
  for (const plugin of plugins) {
    const current = await requireImage(job, image.id);
    await plugin.run({
      image: current,
      stagedPath: staging.path(image.id),
      roles,
      signal,
      sizeCap,
      updateImage: async (fields) => {
        if (!(await deps.images.updateFields(image.id, 'importing', fields))) throw new ImportStopped(IMAGE_DELETED);
      },
      setProperties: async (props) => {
        for (const [key, value] of Object.entries(props)) await deps.images.setProperty(image.id, key, value);
      },
      mayWriteProperty: (name, exists) => protections?.mayWrite(name, exists, { roles }) ?? true,
      inspectFile,
      judge: (report, claimed) => judge(report, claimed, deps.settings.formatPolicy),
      warn: (message) => deps.log.warn({ task: job.task.id, image: image.id, plugin: plugin.name }, message),
    });
  }
  return requireImage(job, image.id);
}
