import type { ImportMethod } from './method.ts';

/** glance-direct: the user staged the bytes (PUT /stage); nothing to fetch. */
export const glanceDirect: ImportMethod = {
  copying: false,
  takesData: false,
  from: 'uploading',
  runsPlugins: true,
  stage: async (_job, image) => ({ image, expected: null }),
};
