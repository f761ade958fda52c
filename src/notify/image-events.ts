import type { Image } from '../domain/image.ts';
import type { Notifier } from './notifier.ts';
import { imagePayload } from './payloads.ts';

/**
 * An image event (image.update after a save, image.activate) with the image as it now is. The image is
 * read only when the event is sent: no read at all with notifications off, the default.
 */
export async function notifyImage(
  deps: { images: { get(id: string): Promise<Image | null> }; notifier: Notifier },
  event: 'image.update' | 'image.activate',
  imageId: string,
): Promise<void> {
  if (!deps.notifier.sends(event)) return;
  const image = await deps.images.get(imageId);
  if (image) deps.notifier.info(event, imagePayload(image));
}
