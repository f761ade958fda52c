import { taskPayload } from '../notify/payloads.ts';
import type { RequestContext } from '../auth/context.ts';
import { gazeError } from '../domain/errors.ts';
import { TASK_STATUSES } from '../domain/task.ts';
import { TASK_FILTER_COLUMNS, TASK_SORT_KEYS, type TaskFilterColumn, type TaskRow, type TaskSortKey } from '../db/repos/tasks.ts';
import type { ServiceDeps } from './deps.ts';
import { findVisibleImage, targetFor } from './access.ts';
import type { ImportEngine } from '../import/port.ts';
import { lastValue, limitParam, LIST_PARAMS, popFirst, type QueryPairs } from './query.ts';
import type { UriFilterOptions } from '../net/uri-filter.ts';
import { passesFilterResolved } from '../net/safe-download.ts';
import { SchemaValidator } from '../schemas/validate.ts';
import { taskSchema } from '../schemas/others.ts';
import { isPythonFalsy, pyStr } from '../schemas/python-repr.ts';

/** A new task's body: Glance validates it with the served schema, closed to other properties. */
const taskBody = new SchemaValidator('task', { ...taskSchema, additionalProperties: false });

const UUID_LIKE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** The tasks API: an image's tasks, and the legacy admin-only /v2/tasks (spec import.md §8). */
export class TaskService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly engine: ImportEngine,
    private readonly opts: { uriFilter: UriFilterOptions; resolveTimeoutMs: number },
  ) {}

  async forImage(ctx: RequestContext, imageId: string): Promise<TaskRow[]> {
    const image = await findVisibleImage(this.deps, ctx, imageId, 'NOT_FOUND');
    if (!this.deps.policy.check('get_image', ctx, targetFor(this.deps, ctx, image))) {
      throw gazeError('NOT_FOUND');
    }
    const rows = await this.deps.tasks.listForImage(imageId);
    return ctx.isAdmin ? rows : rows.filter((t) => t.owner === ctx.projectId);
  }

  /** Tasks are never deleted through the API; Glance checks the caller may use the tasks API before it says so. */
  refuseDelete(ctx: RequestContext): never {
    this.access(ctx);
    throw gazeError('TASK_DELETE_NOT_ALLOWED').withHeaders({ Allow: 'GET' });
  }

  private access(ctx: RequestContext): void {
    this.deps.policy.enforce('tasks_api_access', ctx, { project_id: ctx.projectId });
  }

  async show(ctx: RequestContext, id: string): Promise<TaskRow> {
    this.access(ctx);
    // An admin still reads an expired task, and pages on from one, as Glance's database ignores the
    // expiry there; lists and other callers no longer see it.
    const task = await this.deps.tasks.get(id, { expiredToo: ctx.isAdmin });
    if (!task || (!ctx.isAdmin && task.owner !== ctx.projectId)) throw gazeError('TASK_NOT_FOUND', id);
    return task;
  }

  async list(ctx: RequestContext, pairs: QueryPairs, limits: { default: number; max: number }): Promise<{ tasks: TaskRow[]; hasMore: boolean }> {
    this.access(ctx);
    // As Glance's deserializer pops them from the query: the first limit, marker, direction and key;
    // every other parameter is a filter (its status and type checked by their last value).
    const { popped, rest } = popFirst(pairs, LIST_PARAMS);
    // Glance's order: the direction, the status and type filters (when not empty), the marker's form,
    // the limit; the marker itself, then the sort key, only when the database is asked.
    const sortDir = popped.get('sort_dir') ?? 'desc';
    if (sortDir !== 'asc' && sortDir !== 'desc') throw gazeError('INVALID_SORT_DIR', sortDir);
    const status = lastValue(rest, 'status');
    if (status && !(TASK_STATUSES as readonly string[]).includes(status)) throw gazeError('BAD_REQUEST', `Invalid status value: ${status}`);
    const type = lastValue(rest, 'type');
    if (type && type !== 'import') throw gazeError('BAD_REQUEST', `Invalid type value: ${type}`);
    // An empty marker skips the format check and is then looked up, as in Glance.
    const markerId = popped.get('marker');
    if (markerId && !UUID_LIKE.test(markerId)) throw gazeError('BAD_REQUEST', 'Invalid marker format');
    const limitText = popped.get('limit');
    const limit = limitText === undefined ? limits.default : Math.min(limitParam(limitText), limits.max);
    let marker: TaskRow | undefined;
    if (markerId !== undefined) {
      marker = (await this.deps.tasks.get(markerId, { expiredToo: ctx.isAdmin })) ?? undefined;
      if (!marker) throw gazeError('BAD_REQUEST', `Task with the given id ${markerId} was not found`);
      if (!ctx.isAdmin && marker.owner !== null && marker.owner !== ctx.projectId) {
        throw gazeError('FORBIDDEN', `Forbidding request, task ${markerId} is not visible`);
      }
    }
    const sortKey = popped.get('sort_key') ?? 'created_at';
    if (!(TASK_SORT_KEYS as readonly string[]).includes(sortKey)) throw gazeError('SORT_KEY_NOT_VALID');
    // Glance's database layer compares each filter that names a task column, empty values and repeats
    // included (`status=` matches nothing); the others are ignored.
    const filters = rest.filter((pair): pair is [TaskFilterColumn, string] => (TASK_FILTER_COLUMNS as readonly string[]).includes(pair[0]));
    const tasks = await this.deps.tasks.list({
      owner: ctx.isAdmin ? null : ctx.projectId,
      filters,
      sortKey: sortKey as TaskSortKey,
      sortDir,
      limit,
      marker,
    });
    return { tasks, hasMore: tasks.length === limit && limit > 0 };
  }

  /**
   * The checks Glance makes before it creates a legacy import task (its task would fail anyway): the
   * input's fields, the source's scheme, and the import filter, the host's resolved addresses included.
   */
  private async checkLegacyInput(input: Record<string, unknown>): Promise<void> {
    // The source first, as Glance checks it before the task exists (an empty one: "Invalid location: None").
    const from = input.import_from;
    if (isPythonFalsy(from)) throw gazeError('BAD_REQUEST', `Invalid location: ${pyStr(from)}`);
    const uri = typeof from === 'string' ? from : '';
    if (uri.startsWith('file:') || uri.startsWith('filesystem:')) {
      throw gazeError('BAD_REQUEST', 'File based imports are not allowed. Please use a non-local source of image data.');
    }
    // As Glance's startswith: the scheme in lower case.
    if (!/^https?:\/\//.test(uri)) {
      throw gazeError('BAD_REQUEST', "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']");
    }
    if (!(await passesFilterResolved(uri, this.opts.uriFilter, { timeoutMs: this.opts.resolveTimeoutMs }))) {
      throw gazeError('BAD_REQUEST', `URI for legacy import task does not pass filtering: ${uri}`);
    }
    // Glance's task would fail at once without these; Gaze refuses it instead.
    for (const key of ['import_from_format', 'image_properties']) {
      if (!(key in input)) throw gazeError('BAD_REQUEST', `Input does not contain '${key}' field`);
    }
    const properties = input.image_properties;
    if (properties === null || typeof properties !== 'object' || Array.isArray(properties))
      throw gazeError('BAD_REQUEST', "'image_properties' must be an object");
  }

  /**
   * POST /v2/tasks with type `import`: a new image from `image_properties`, filled from `import_from`.
   * The body is read once the caller may use the tasks API (Glance refuses before it parses).
   */
  async create(ctx: RequestContext, readBody: () => Promise<unknown>): Promise<TaskRow> {
    this.access(ctx);
    const body = await readBody();
    // A list has no 'type' for Glance's check either; what is no JSON container at all has no body here.
    if (Array.isArray(body)) throw gazeError('BAD_REQUEST', "Task 'type' is required");
    if (body === undefined || body === null || typeof body !== 'object') throw gazeError('BODY_EXPECTED');
    const request = body as Record<string, unknown>;
    if (!('type' in request)) throw gazeError('BAD_REQUEST', "Task 'type' is required");
    if (!('input' in request)) throw gazeError('BAD_REQUEST', "Task 'input' is required");
    taskBody.validate(request);
    if (request.type !== 'import') throw gazeError('BAD_REQUEST', `Task type ${request.type} is created by the image import API, not here.`);
    // The schema lets a null input through; an import task without one could never run.
    if (request.input === null) throw gazeError('SCHEMA_MISMATCH', 'task', "None is not of type 'object'");
    await this.checkLegacyInput(request.input as Record<string, unknown>);
    const task = this.engine.newTask({
      type: 'import',
      owner: ctx.projectId ?? '',
      input: JSON.stringify(request.input),
      image_id: null,
      request_id: ctx.requestId,
      user_id: ctx.userId,
    });
    await this.deps.tasks.insert(task);
    this.deps.notifier.info('task.create', taskPayload(task));
    this.engine.submit(task, { token: ctx.authToken, catalog: ctx.serviceCatalog, roles: ctx.roles, isAdmin: ctx.isAdmin });
    return task;
  }
}
