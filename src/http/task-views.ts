import type { TaskRow } from '../db/repos/tasks.ts';
import { apiTime, rawRowTime } from '../domain/time.ts';

// A task as the API shows it: the full view, the list item, and the raw row of /v2/images/{id}/tasks.

function parse(json: string | null): unknown {
  return json === null ? null : JSON.parse(json);
}

// What the service keeps in a task's input for its own use (the importing user's roles for the plugins,
// the values a glance-download overwrote, the locations a copy made): never part of the input the user
// gave, so never shown.
const INTERNAL_INPUT_KEYS = ['roles', 'service_roles', 'previous', 'copies', 'staged_on'];

function shownInput(row: TaskRow): unknown {
  const input = parse(row.input);
  if (row.type !== 'api_image_import') return input; // a legacy task's input is all the user's
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  return Object.fromEntries(Object.entries(input).filter(([key]) => !INTERNAL_INPUT_KEYS.includes(key)));
}

/** The full task view of /v2/tasks/{id} (timestamps with Z; optional keys only when set), in Glance's key order. */
export function taskView(row: TaskRow): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: row.id,
    input: shownInput(row),
    type: row.type,
    status: row.status,
    owner: row.owner,
    message: row.message,
    result: parse(row.result),
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    self: `/v2/tasks/${row.id}`,
    schema: '/v2/schemas/task',
  };
  if (row.image_id) view.image_id = row.image_id;
  if (row.request_id) view.request_id = row.request_id;
  if (row.user_id) view.user_id = row.user_id;
  if (row.expires_at) view.expires_at = apiTime(row.expires_at);
  return view;
}

/** The list item of GET /v2/tasks: no input, result or message. */
export function taskStubView(row: TaskRow): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: row.id,
    type: row.type,
    status: row.status,
    owner: row.owner,
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    self: `/v2/tasks/${row.id}`,
    schema: '/v2/schemas/task',
  };
  if (row.expires_at) view.expires_at = apiTime(row.expires_at);
  return view;
}

/** GET /v2/images/{id}/tasks returns Glance's raw database rows. */
export function taskRawView(row: TaskRow): Record<string, unknown> {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    owner: row.owner,
    expires_at: rawRowTime(row.expires_at),
    created_at: rawRowTime(row.created_at),
    updated_at: rawRowTime(row.updated_at),
    deleted_at: rawRowTime(row.deleted_at),
    deleted: Boolean(row.deleted),
    image_id: row.image_id,
    request_id: row.request_id,
    user_id: row.user_id,
    input: shownInput(row),
    result: parse(row.result),
    message: row.message,
  };
}
