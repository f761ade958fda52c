import { isGazeError } from '../domain/errors.ts';
import { IngestAborted } from '../ingest/pipeline.ts';
import { ImageGone } from '../domain/image.ts';
import { DigestMismatch } from '../ingest/store-data.ts';
import { StoreError } from '../stores/driver.ts';
import { DownloadError } from '../net/safe-download.ts';
import { GlanceDownloadFailed } from './glance-download.ts';
import { PluginFailed } from './plugins/index.ts';
import type { Logger } from '../util/logger.ts';

/** Why a task stopped early; its message becomes the task's message. */
export class ImportStopped extends Error {}

/**
 * This process stops working on a task that stays unfinished: the service is stopping, or another
 * process took the lease over (this one was paused past its lease). The task, the image and the staged
 * data are left as they are, to whoever holds the lease now.
 */
export class HandedOn extends Error {}

export const IMAGE_DELETED = 'Image has been deleted, aborting import.';

/** The task message for a failure: what the user may read; the details go to the log. */
export function describeFailure(err: unknown, log: Logger): string {
  if (err instanceof ImportStopped) return err.message;
  if (err instanceof DigestMismatch) return `${err.message}; the data was not kept.`;
  if (err instanceof ImageGone) return IMAGE_DELETED;
  if (err instanceof GlanceDownloadFailed) return err.message;
  if (err instanceof PluginFailed) return err.message;
  if (err instanceof DownloadError) return `Downloading the image failed: ${err.message}`;
  if (isGazeError(err)) {
    if (err.cause !== undefined) log.warn({ err: err.cause }, err.message);
    return err.message;
  }
  if (err instanceof StoreError) {
    log.error({ err }, 'an import failed to store data');
    return `Storing the image failed: ${err.publicMessage}`;
  }
  if (err instanceof IngestAborted) return 'The image data stream ended early.';
  log.error({ err }, 'an import failed unexpectedly');
  return 'Task failed due to Internal Error';
}
