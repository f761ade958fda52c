import type { Image } from '../../domain/image.ts';
import type { ImportDeps } from '../deps.ts';

/**
 * After a download into staging: its size is held against the quotas, then checked again. Downloads
 * that ran side by side were each checked against the same remaining quota while none had finished;
 * whichever checks last sees the others and fails, as a stage does.
 */
export async function holdStaged(deps: ImportDeps, image: Image, size: number): Promise<void> {
  await deps.images.updateFields(image.id, 'importing', { reserved_bytes: size });
  await deps.quotas.refuseOversized(image.owner, image.id, { staged: size });
}
