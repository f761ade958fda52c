import { safeDownload } from '../../net/safe-download.ts';
import type { ImportMethod } from './method.ts';
import { holdStaged } from './stage-quota.ts';

/** web-download: the service fetches the URL itself, through the filtered client, into staging. */
export const webDownload: ImportMethod = {
  copying: false,
  takesData: true,
  from: 'queued',
  runsPlugins: true,
  async stage(job, image) {
    const { deps, staging, signal } = job;
    await staging.remove(image.id);
    const sizeCap = deps.settings.imageSizeCap;
    const budget = await deps.quotas.stageBudget(image.owner, image.id);
    const response = await safeDownload(job.input.import_req.method.uri!, { ...job.opts.download, maxBytes: sizeCap, signal });
    // The image's size comes with its data's activation: while it imports it has none, as in Glance;
    // what it stages is held against the quotas meanwhile, so that downloads side by side see it (and a
    // size that does not fit is refused before the download).
    if (budget && response.contentLength !== null) {
      const size = response.contentLength;
      await deps.quotas.hold(image.owner, image.id, ['importing'], { staged_bytes: size }, { staged: size }).catch((err: unknown) => {
        response.body.destroy();
        throw err;
      });
    }
    const staged = await staging.write({ source: response.body, key: image.id, sizeCap, signal, budget });
    if (budget) await holdStaged(deps, image, staged.size);
    return { image, expected: null };
  },
};
