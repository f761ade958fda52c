import { gazeError } from '../domain/errors.ts';
import { pythonInt } from '../schemas/python-repr.ts';

/** A query string as its name/value pairs, in order, repeats kept. */
export type QueryPairs = Array<[string, string]>;

/** A parameter's last value, as Glance's MultiDict gives it to a controller. */
export function lastValue(pairs: QueryPairs, name: string): string | undefined {
  return pairs.filter(([key]) => key === name).at(-1)?.[1];
}

/** A parameter's first value, as Glance's MultiDict pops it (`params.pop(name)`, `filters.pop(name)`). */
export function firstValue(pairs: QueryPairs, name: string): string | undefined {
  return pairs.find(([key]) => key === name)?.[1];
}

/**
 * Glance's `params.pop(name)` on a MultiDict copy: the first value of each named parameter, and the
 * pairs left without those occurrences (a repeat stays, and is read on as a filter).
 */
export function popFirst(pairs: QueryPairs, names: readonly string[]): { popped: Map<string, string>; rest: QueryPairs } {
  const popped = new Map<string, string>();
  const rest: QueryPairs = [];
  for (const [key, value] of pairs) {
    if (names.includes(key) && !popped.has(key)) popped.set(key, value);
    else rest.push([key, value]);
  }
  return { popped, rest };
}

/** What Glance's task and metadata-definition list deserializers pop (the first of each); the rest are filters. */
export const LIST_PARAMS = ['limit', 'marker', 'sort_dir', 'sort_key'] as const;

/** A list's `limit` as Glance's deserializers read it: Python's int(), and not below 0. */
export function limitParam(text: string): number {
  const limit = pythonInt(text);
  if (limit === null) throw gazeError('LIMIT_NOT_INTEGER');
  if (limit < 0) throw gazeError('LIMIT_NOT_POSITIVE');
  return limit;
}
