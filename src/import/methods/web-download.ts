import { safeDownload } from '../../net/safe-download.ts';
import type { ImportMethod } from './method.ts';

/** web-download: the service fetches the URL itself, through the filtered client, into staging. */
export const webDownload: ImportMethod = {
  copying: false,
  from: 'queued',
  runsPlugins: true,
  async stage(job, image) {
    const { deps, staging, signal } = job;
    await staging.remove(image.id);
    const sizeCap = deps.settings.imageSizeCap;
    const budget = await deps.quotas.stageBudget(image.owner, image.id);
    const response = await safeDownload(job.input.import_req.method.uri!, { ...job.opts.download, maxBytes: sizeCap, signal });
    if (budget && response.contentLength !== null && response.contentLength > budget.bytes) {
      response.body.destroy();
      throw budget.exceeded(response.contentLength);
    }
    // The image's size comes with its data's activation: while it imports it has none, as in Glance.
    await staging.write({ source: response.body, key: image.id, sizeCap, signal, budget });
    return { image, expected: null };
  },
};
