import type { RequestContext } from '../auth/context.ts';
import { limitParam, popFirst, type QueryPairs } from './query.ts';
import type { Image } from '../domain/image.ts';
import { MAX_INT32, VISIBILITIES } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import { pythonInt } from '../schemas/python-repr.ts';
import { parseFilterTime, addSeconds } from '../domain/time.ts';
import type { ColumnCondition, CompareOp, ImageColumn, ListQuery, SortKey } from '../db/repos/images.ts';
import type { ServiceDeps } from './deps.ts';
import { canSee, targetFor } from './access.ts';

const SORT_KEYS: SortKey['key'][] = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'];
const IN_FILTER_COLUMNS: ImageColumn[] = ['name', 'id', 'status', 'container_format', 'disk_format'];
const EXACT_COLUMNS: ImageColumn[] = ['checksum', 'os_hash_value', 'os_hash_algo', 'min_ram', 'min_disk', 'size', 'virtual_size', 'owner'];
const RANGE_COLUMNS: ImageColumn[] = ['size', 'virtual_size', 'min_ram', 'min_disk'];
const TIME_OPS: CompareOp[] = ['gt', 'gte', 'eq', 'neq', 'lt', 'lte'];
const MEMBER_STATUSES = ['pending', 'accepted', 'rejected', 'all'] as const;
/** Read by the sorting, apart from the filters (with the first `sort`). */
const CLASSIC_SORT_PARAMS = ['sort_key', 'sort_dir'];
/** Filters Glance's image_get_all pops (the first value) before the others are read as a dict (the last value). */
const FIRST_VALUE_FILTERS = ['visibility', 'checksum', 'os_hash_value'] as const;

/**
 * Glance's check of the quotes in an `in:` list: each unescaped quote that opens follows a comma (or
 * starts the list), each that closes is followed by one (or ends it), and none is left open.
 */
function validateQuotes(text: string): void {
  const invalid = (why: string) => gazeError('BAD_REQUEST', `Invalid filter value ${text}. ${why}`);
  let opening = true;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '"' || (i > 0 && text[i - 1] === '\\')) continue;
    if (opening && i > 0 && text[i - 1] !== ',') throw invalid('There is no comma before opening quotation mark.');
    if (!opening && i + 1 !== text.length && text[i + 1] !== ',') throw invalid('There is no comma after closing quotation mark.');
    opening = !opening;
  }
  if (!opening) throw invalid('The quote is not closed.');
}

/** A quoted value (escapes kept as written), a run of non-commas, or a lone comma (the empty value); each eats one following comma. */
const IN_VALUE = /"([^"\\]*(?:\\[^\n][^"\\]*)*)",?|([^,]+),?|,/g; // Python's . is anything but \n

/** Splits Glance's `in:a,b,"c,d"` value list as Glance does: `a,` is one value, and an empty list matches nothing. */
function splitInValues(text: string): string[] {
  validateQuotes(text);
  return [...text.matchAll(IN_VALUE)].map((m) => m[1] || m[2] || '');
}

/** `op:value` with ops in/eq for the exact-match columns (a value holding ':' needs an explicit `eq:`). */
function columnFilter(column: ImageColumn, raw: string): ColumnCondition {
  const colon = raw.indexOf(':');
  if (colon < 0) return { column, op: 'eq', values: [raw] };
  const op = raw.slice(0, colon);
  const rest = raw.slice(colon + 1);
  if (op === 'in') return { column, op: 'in', values: splitInValues(rest) };
  if (op === 'eq') return { column, op: 'eq', values: [rest] };
  throw gazeError('BAD_REQUEST', `Unable to filter by unknown operator '${op}'.`);
}

/**
 * created_at/updated_at: `op:ISO8601`, read in Glance's order: a value that is a time as a whole is
 * `eq` (its offset has a colon too); otherwise the operator is what comes before the first colon, the
 * time is checked, then the operator. Times compare as whole seconds, as Glance on MySQL stores them: a
 * threshold with microseconds lies between two of them.
 */
function timeFilters(column: 'created_at' | 'updated_at', raw: string): ColumnCondition[] {
  const whole = parseFilterTime(raw);
  const colon = raw.indexOf(':');
  const op = whole || colon < 0 ? 'eq' : raw.slice(0, colon);
  const time = whole ?? parseFilterTime(colon < 0 ? raw : raw.slice(colon + 1));
  if (!time) throw gazeError('BAD_REQUEST', `Bad "${column}" query filter format. Use ISO 8601 DateTime notation.`);
  if (!TIME_OPS.includes(op as CompareOp)) throw gazeError('BAD_REQUEST', 'Unable to filter on a unknown operator.');
  const { second, fractional } = time;
  const next = addSeconds(second, 1);
  if (fractional) {
    // No stored time equals it: gt and gte start at the next second, lt and lte end there.
    if (op === 'eq') return [{ column, op: 'in', values: [] }];
    if (op === 'neq') return [];
    return [{ column, op: op.startsWith('g') ? 'gte' : 'lt', values: [next] }];
  }
  switch (op) {
    case 'eq':
      return [
        { column, op: 'gte', values: [second] },
        { column, op: 'lt', values: [next] },
      ];
    case 'neq':
      return [{ column, op: 'outside', values: [second, next] }];
    case 'gt':
      return [{ column, op: 'gte', values: [next] }];
    case 'gte':
      return [{ column, op: 'gte', values: [second] }];
    case 'lt':
      return [{ column, op: 'lt', values: [second] }];
    default:
      return [{ column, op: 'lt', values: [next] }]; // lte
  }
}

/** A number (as Python's int() reads it) that fits the column (32-bit for min_ram/min_disk), so no engine fails on the comparison. */
function numericFilter(column: ImageColumn, param: string, text: string, value: number): number {
  const max = column === 'min_ram' || column === 'min_disk' ? MAX_INT32 : Number.MAX_SAFE_INTEGER;
  if (value > max) throw gazeError('VALUE_TOO_LARGE', text.trim(), param, max);
  // Below every value the column can hold: the same answer as the smallest, and a number the database takes.
  return Math.max(value, -max);
}

/** The filters that decide which images are in scope: a visibility Glance knows; never changes-since. */
function checkScopeFilter(key: 'visibility' | 'changes-since', value: string): void {
  if (key === 'changes-since') throw gazeError('BAD_REQUEST', 'The "changes-since" filter is no longer available on v2.');
  if (![...VISIBILITIES, 'all'].includes(value as never)) throw gazeError('BAD_REQUEST', `Invalid visibility value: ${value}`);
}

function checkMemberStatus(value: string): ListQuery['scope']['memberStatus'] {
  if (!MEMBER_STATUSES.includes(value as never)) throw gazeError('BAD_REQUEST', `Invalid status: ${value}`);
  return value as ListQuery['scope']['memberStatus'];
}

function parseBool(name: string, value: string, caseSensitive: boolean): boolean {
  const v = caseSensitive ? value : value.toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw gazeError('BAD_REQUEST', `Invalid value '${value}' for '${name}' filter. Valid values are 'true' or 'false'.`);
}

/** The sort keys of the classic parameters, or of `sort` (its first value, the one Glance pops). */
function parseSort(pairs: QueryPairs, sortParam: string | undefined): SortKey[] {
  // Glance strips each value, and checks every key before any direction.
  const sortKeys = pairs.filter(([k]) => k === 'sort_key').map(([, v]) => v.trim());
  const sortDirs = pairs.filter(([k]) => k === 'sort_dir').map(([, v]) => v.trim());
  const sort = sortParam === undefined ? [] : [sortParam];
  const keys: SortKey[] = [];
  const checkKey = (key: string) => {
    if (!SORT_KEYS.includes(key as SortKey['key'])) throw gazeError('INVALID_SORT_KEY', key, SORT_KEYS.join(', '));
  };
  const checkDir = (dir: string) => {
    if (dir !== 'asc' && dir !== 'desc') throw gazeError('INVALID_SORT_DIR', dir);
  };
  if (sort.length) {
    if (sortKeys.length || sortDirs.length) throw gazeError('BAD_REQUEST', 'Old and new sorting syntax cannot be combined');
    // As Glance's partition(':'): a direction left empty is the default one; `name:asc:x` has "asc:x".
    for (const part of sort.join(',').trim().split(',')) {
      const colon = part.indexOf(':');
      const key = (colon < 0 ? part : part.slice(0, colon)).trim();
      const dir = (colon < 0 || colon === part.length - 1 ? 'desc' : part.slice(colon + 1)).trim();
      checkKey(key);
      checkDir(dir);
      keys.push({ key: key as SortKey['key'], dir: dir as 'asc' | 'desc' });
    }
  } else {
    sortKeys.forEach(checkKey);
    sortDirs.forEach(checkDir);
    if (sortDirs.length > 1 && sortDirs.length !== sortKeys.length) {
      throw gazeError('BAD_REQUEST', 'Number of sort dirs does not match the number of sort keys');
    }
    const list = sortKeys.length ? sortKeys : ['created_at'];
    list.forEach((key, i) => {
      checkKey(key);
      const dir = (sortDirs.length > 1 ? sortDirs[i] : (sortDirs[0] ?? 'desc')) as 'asc' | 'desc';
      keys.push({ key: key as SortKey['key'], dir });
    });
  }
  // Tie-breakers, in the one direction given (or desc), as Glance appends them.
  const dirs = new Set(keys.map((k) => k.dir));
  const tieDir = dirs.size === 1 && (sortDirs.length === 1 || sort.length > 0 || sortDirs.length === 0) ? keys[0]!.dir : 'desc';
  for (const extra of ['created_at', 'id'] as const) if (!keys.some((k) => k.key === extra)) keys.push({ key: extra, dir: tieDir });
  return keys;
}

export class ImageListService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(ctx: RequestContext, pairs: QueryPairs): Promise<{ images: Image[]; hasMore: boolean }> {
    this.deps.policy.enforce('get_images', ctx, { project_id: ctx.projectId });
    const { settings } = this.deps;
    // Glance's deserializer pops the first limit, marker and member_status and every tag. What is left
    // are the filters, each by its last value (a Python dict made of the MultiDict), a repeated limit,
    // marker, member_status or sort among them as a property.
    const { popped, rest } = popFirst(pairs, ['limit', 'marker', 'member_status', 'sort']);
    const tags = rest.filter(([key]) => key === 'tag').map(([, value]) => value.trim());
    // The sorting parser pops the first `sort` (a repeat stays, a filter on a property named so) and
    // every sort_key and sort_dir. The controller sets `deleted` itself.
    const remaining = rest.filter(([key]) => key !== 'tag' && !CLASSIC_SORT_PARAMS.includes(key) && key !== 'deleted');
    const filters = new Map(remaining);
    const get = (name: string) => filters.get(name);
    // Glance's database pops these by their first value before it makes a dict of the rest: a repeat's
    // last value is then a second condition on the same column.
    const applied = new Map(filters);
    const repeats: ColumnCondition[] = [];
    for (const name of FIRST_VALUE_FILTERS) {
      const values = remaining.filter(([key]) => key === name).map(([, value]) => value);
      if (values.length) applied.set(name, values[0]!);
      if (values.length > 1) repeats.push({ column: name, op: 'eq', values: [values.at(-1)!] });
    }

    // It checks visibility and changes-since, then member_status, then the limit and the sorting; the
    // other filters only once the query runs. The first of several faults is named.
    for (const key of ['visibility', 'changes-since'] as const) {
      const value = get(key);
      if (value) checkScopeFilter(key, value); // an empty one is no fault to Glance
    }
    const memberStatus = checkMemberStatus(popped.get('member_status') ?? 'accepted');
    const limitText = popped.get('limit');
    const limit = Math.min(limitText === undefined ? settings.limitParamDefault : limitParam(limitText), settings.apiLimitMax);

    const sort = parseSort(pairs, popped.get('sort'));
    // Then Glance's controller: os_hidden (any case), then protected, each by its last value.
    const hiddenText = get('os_hidden');
    if (hiddenText !== undefined) parseBool('os_hidden', hiddenText, false);
    const protectedText = get('protected');
    if (protectedText !== undefined) parseBool('protected', protectedText, true);
    const conditions: ColumnCondition[] = [...repeats];
    const properties: Array<{ name: string; value: string }> = [];
    let visibility: ListQuery['scope']['visibility'] = null;
    let osHidden = false;
    let unreadableFilter = false;

    for (const [key, value] of applied) {
      if (key === 'changes-since') continue;
      if (key === 'visibility') {
        visibility = value as NonNullable<typeof visibility>; // checked above
      } else if (key === 'protected') {
        conditions.push({ column: 'protected', op: 'eq', values: [parseBool('protected', value, true)] });
      } else if (key === 'os_hidden') {
        osHidden = parseBool('os_hidden', value, false);
      } else if (IN_FILTER_COLUMNS.includes(key as ImageColumn)) {
        conditions.push(columnFilter(key as ImageColumn, value));
      } else if (key === 'created_at' || key === 'updated_at') {
        conditions.push(...timeFilters(key, value));
      } else if (/_(min|max)$/.test(key) && RANGE_COLUMNS.includes(key.slice(0, -4) as ImageColumn)) {
        const column = key.slice(0, -4) as ImageColumn;
        const number = pythonInt(value);
        if (number === null) throw gazeError('BAD_REQUEST', 'Unable to filter on a range with a non-numeric value.');
        conditions.push({ column, op: key.endsWith('_min') ? 'gte' : 'lte', values: [numericFilter(column, key, value, number)] });
      } else if (EXACT_COLUMNS.includes(key as ImageColumn)) {
        const numeric = RANGE_COLUMNS.includes(key as ImageColumn);
        const number = numeric ? pythonInt(value) : null;
        if (numeric && number === null) throw gazeError('BAD_REQUEST', `Invalid value '${value}' for '${key}' filter.`);
        conditions.push({ column: key as ImageColumn, op: 'eq', values: [number !== null ? numericFilter(key as ImageColumn, key, value, number) : value] });
      } else {
        properties.push({ name: key, value });
        // A property the caller may not read cannot be filtered on: as if no image had it.
        if (this.deps.propertyProtections && !this.deps.propertyProtections.allows('read', key, ctx)) unreadableFilter = true;
      }
    }

    let marker: Image | null = null;
    const markerId = popped.get('marker');
    if (markerId !== undefined) {
      // An admin's marker may be an image deleted since the last page: the paging goes on after it, as
      // Glance's does (an admin context sees deleted rows there).
      if (markerId.length <= 36) marker = (await this.deps.images.get(markerId)) ?? (ctx.isAdmin ? await this.deps.images.getRow(markerId) : null);
      if (!marker) throw gazeError('MARKER_NOT_FOUND', markerId);
      if (!(await canSee(this.deps, ctx, marker))) throw gazeError('MARKER_NOT_VISIBLE', markerId);
    }

    // An empty visibility is a filter no image passes, as in Glance.
    if (unreadableFilter || (visibility as string | null) === '') return { images: [], hasMore: false };
    const rows = await this.deps.images.list({
      conditions,
      properties,
      tags,
      osHidden,
      sort,
      limit,
      marker,
      scope: { isAdmin: ctx.isAdmin, projectId: ctx.projectId, visibility, memberStatus },
    });
    // Glance then drops each image the caller may not get (an operator's narrower get_image hides images
    // from lists too); the next page starts after the last image kept.
    const images = rows.filter((image) => this.deps.policy.check('get_image', ctx, targetFor(this.deps, ctx, image)));
    return { images, hasMore: images.length > 0 && rows.length === limit };
  }
}
