// A task's record and its state machine. The API views of a task live in http/task-views.ts.

export const TASK_STATUSES = ['pending', 'processing', 'success', 'failure'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TaskType = 'import' | 'api_image_import';

const TASK_TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ['processing', 'failure'],
  processing: ['success', 'failure'],
  success: [],
  failure: [],
};

export function canTaskTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

/** Refuses (as a programming error) a task status write the state machine does not allow; staying put is allowed. */
export function checkTaskStatusChange(expected: readonly string[], to: string): void {
  for (const from of expected) {
    if (from !== to && !canTaskTransition(from as TaskStatus, to as TaskStatus)) throw new Error(`task status ${from} -> ${to} is not in the state machine`);
  }
}

/** A task as stored: the columns of the tasks table. */
export interface TaskRecord {
  id: string;
  type: string;
  status: string;
  owner: string;
  input: string | null; // JSON
  result: string | null; // JSON
  message: string;
  image_id: string | null;
  request_id: string | null;
  user_id: string | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  deleted: number;
  /** Which service process runs the task, and until when its claim holds (restart recovery). */
  lease_owner: string | null;
  lease_expires_at: string | null;
  attempts: number;
}

export function isTerminal(status: string): boolean {
  return status === 'success' || status === 'failure';
}
