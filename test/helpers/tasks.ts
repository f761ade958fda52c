import { randomUUID } from 'node:crypto';
import type { TaskRow } from '../../src/db/repos/tasks.ts';
import { nowTimestamp } from '../../src/domain/time.ts';

/** A task row as tests insert it directly: a pending import task of no one in particular, made now. */
export function taskRow(overrides: Partial<TaskRow> = {}): TaskRow {
  const now = nowTimestamp();
  return {
    id: randomUUID(),
    type: 'api_image_import',
    status: 'pending',
    owner: 'p1',
    input: '{}',
    result: null,
    message: '',
    image_id: null,
    request_id: null,
    user_id: null,
    expires_at: null,
    created_at: now,
    updated_at: now,
    deleted_at: null,
    deleted: 0,
    lease_owner: null,
    lease_expires_at: null,
    attempts: 0,
    ...overrides,
  };
}
