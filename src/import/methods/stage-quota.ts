import type { Image } from '../../domain/image.ts';
import type { ImportDeps } from '../deps.ts';

/**
 * After a download into staging: its size is held against the quotas and checked again. Downloads that
 * ran side by side were each checked against the same remaining quota while none had finished; those
 * that still fit beside the others keep their hold, the rest fail, as a stage does.
 */
export async function holdStaged(deps: ImportDeps, image: Image, size: number): Promise<void> {
  await deps.quotas.hold(image.owner, image.id, ['importing'], { staged_bytes: size }, { staged: size });
}
