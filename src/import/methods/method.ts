import type { Image, ImageStatus } from '../../domain/image.ts';
import type { ExpectedDigest } from '../../ingest/store-data.ts';
import type { ImportJob } from '../job.ts';

/** One way of getting an image's bytes into staging; the engine does the rest the same way for all. */
export interface ImportMethod {
  /** copy-image works on an active image, which stays active; the others import into a new one. */
  readonly copying: boolean;
  /** The status the image leaves when its import starts (not for copying). */
  readonly from: ImageStatus;
  /**
   * Whether the import begins taking data into staging as it starts: the image then counts against
   * image_count_uploading and image_stage_total, checked with the start (glance-direct's counted since its stage).
   */
  readonly takesData: boolean;
  /** Whether the configured import plugins run on the staged data. */
  readonly runsPlugins: boolean;
  /** Puts the bytes into staging; returns the image as it now is and a digest the bytes must have, if any. */
  stage(job: ImportJob, image: Image): Promise<{ image: Image; expected: ExpectedDigest | null }>;
}
