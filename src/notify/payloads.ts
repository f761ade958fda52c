import { isHiddenProperty, type Image } from '../domain/image.ts';
import { FAILED_IMPORT, IMPORTING_TO_STORES } from '../domain/import-progress.ts';
import type { TaskRecord } from '../domain/task.ts';
import { apiTime, nowTimestamp } from '../domain/time.ts';

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

/**
 * image.prepare's and image.upload's payload: the image, the stores its import still writes to and those
 * that failed (as lists), and for image.prepare with several stores the store written to.
 */
export function imageDataPayload(image: Image, backend?: string): Record<string, unknown> {
  const list = (value: string | null | undefined) => (value ? value.split(',') : []);
  return {
    ...imagePayload(image),
    [IMPORTING_TO_STORES]: list(image.properties[IMPORTING_TO_STORES]),
    [FAILED_IMPORT]: list(image.properties[FAILED_IMPORT]),
    ...(backend ? { backend } : {}),
  };
}

/** image.send's payload, once a download's last byte went out: who read how much of whose image. */
export function imageSendPayload(image: Image, bytesSent: number, reader: { projectId: string | null; userId: string | null }): Record<string, unknown> {
  return {
    bytes_sent: bytesSent,
    image_id: image.id,
    owner_id: image.owner,
    receiver_tenant_id: reader.projectId,
    receiver_user_id: reader.userId,
  };
}

/** image.delete's payload: the image, deleted now (whole seconds, as Glance's isotime()). */
export function imageDeletedPayload(image: Image, status: 'deleted' | 'pending_delete' = 'deleted'): Record<string, unknown> {
  // The delete is the image's last update, as Glance's payload tells (its updated_at is the deleted_at).
  const at = apiTime(nowTimestamp());
  return { ...imagePayload(image), updated_at: at, status, deleted: true, deleted_at: at };
}

/** Glance's payload of an image member (image.member.*); a deletion says when. */
export function memberPayload(
  member: { image_id: string; member: string; status: string; created_at: string; updated_at: string },
  deleted = false,
): Record<string, unknown> {
  return {
    image_id: member.image_id,
    member_id: member.member,
    status: member.status,
    created_at: apiTime(member.created_at),
    updated_at: apiTime(member.updated_at),
    deleted,
    deleted_at: deleted ? apiTime(nowTimestamp()) : null,
  };
}

/**
 * Glance's payload of a task (task.*): never its input, result or message, which may hold secrets.
 * A task without an expiry shows the current time there, as Glance's isotime(None) does.
 */
export function taskPayload(task: TaskRecord): Record<string, unknown> {
  return {
    id: task.id,
    type: task.type,
    status: task.status,
    result: null,
    owner: task.owner,
    message: null,
    expires_at: apiTime(task.expires_at ?? nowTimestamp()),
    created_at: apiTime(task.created_at),
    updated_at: apiTime(task.updated_at),
    deleted: false,
    deleted_at: null,
  };
}
