import type { Image } from '../../src/domain/image.ts';
import { nowTimestamp } from '../../src/domain/time.ts';

/** An image as tests insert it directly: a queued private image of alice with no data, made now. */
export function imageRecord(overrides: Partial<Image> = {}): Image {
  const now = nowTimestamp();
  return {
    id: crypto.randomUUID(),
    name: 'image',
    status: 'queued',
    visibility: 'private',
    protected: false,
    os_hidden: false,
    checksum: null,
    os_hash_algo: null,
    os_hash_value: null,
    owner: 'alice',
    size: null,
    virtual_size: null,
    container_format: null,
    disk_format: null,
    min_ram: 0,
    min_disk: 0,
    created_at: now,
    updated_at: now,
    properties: {},
    tags: [],
    locations: [],
    ...overrides,
  };
}
