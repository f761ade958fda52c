import { isHiddenProperty, type Image } from '../domain/image.ts';
import { apiTime, clockNow } from '../domain/time.ts';

/** Glance's notification payload of an image (locations never included). */
export function imagePayload(image: Image): Record<string, unknown> {
  return {
    id: image.id,
    name: image.name,
    status: image.status,
    created_at: apiTime(image.created_at),
    updated_at: apiTime(image.updated_at),
    min_disk: image.min_disk,
    min_ram: image.min_ram,
    protected: image.protected,
    checksum: image.checksum,
    owner: image.owner,
    disk_format: image.disk_format,
    container_format: image.container_format,
    size: image.size,
    virtual_size: image.virtual_size,
    is_public: image.visibility === 'public',
    visibility: image.visibility,
    // What the API never shows (which node stages or uploads) stays out of notifications too.
    properties: Object.fromEntries(Object.entries(image.properties).filter(([key]) => !isHiddenProperty(key))),
    tags: [...image.tags],
    deleted: false,
    deleted_at: null,
  };
}

/** image.delete's payload: the image as it was, deleted now. */
export function imageDeletedPayload(image: Image): Record<string, unknown> {
  return { ...imagePayload(image), deleted: true, deleted_at: clockNow().toISOString() };
}
