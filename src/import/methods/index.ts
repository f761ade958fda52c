import type { ImportMethod } from './method.ts';
import { copyImage } from './copy-image.ts';
import { glanceDirect } from './glance-direct.ts';
import { glanceDownload } from './glance-download.ts';
import { webDownload } from './web-download.ts';

export type { ImportMethod };

export const IMPORT_METHODS: Readonly<Record<string, ImportMethod>> = {
  'glance-direct': glanceDirect,
  'web-download': webDownload,
  'glance-download': glanceDownload,
  'copy-image': copyImage,
};
