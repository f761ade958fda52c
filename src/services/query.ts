/** A query string as its name/value pairs, in order, repeats kept. */
export type QueryPairs = Array<[string, string]>;

/** A parameter's last value, as Glance's MultiDict gives it to a controller. */
export function lastValue(pairs: QueryPairs, name: string): string | undefined {
  return pairs.filter(([key]) => key === name).at(-1)?.[1];
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
