import { imagePayload } from '../../notify/payloads.ts';
import { ImportStopped } from '../failures.ts';
import type { ImportMethod } from './method.ts';

/**
 * copy-image: the source is a staged copy left by an earlier attempt when whole, else the data from the
 * default store, else from any store that has it (spec import.md §5.4). The copies must be these very
 * bytes: the image's own digests are expected.
 */
export const copyImage: ImportMethod = {
  copying: true,
  takesData: true,
  from: 'active',
  runsPlugins: false,
  async stage(job, image) {
    const { deps, staging, signal } = job;
    // Glance's copy step saves the image once it has its staged copy: an image.update, whichever way.
    const staged = () => {
      deps.notifier.info('image.update', imagePayload(image));
      return { image, expected: null };
    };
    if ((await staging.size(image.id)) === image.size) return staged();
    await staging.remove(image.id);
    const isDefault = (location: (typeof image.locations)[number]) => Number(deps.stores.forLocation(location)?.id === deps.stores.defaultId);
    const locations = [...image.locations].sort((a, b) => isDefault(b) - isDefault(a));
    for (const location of locations) {
      const store = deps.stores.forLocation(location);
      if (!store) continue;
      try {
        const source = await store.read(location.url, undefined, image.size ?? undefined);
        await staging.write({ source, key: image.id, sizeCap: deps.settings.imageSizeCap, signal });
        return staged();
      } catch (err) {
        if (signal.aborted) throw err;
      }
    }
    throw new ImportStopped('Image not found in any configured store');
  },
};
