/** A query string as its name/value pairs, in order, repeats kept. */
export type QueryPairs = Array<[string, string]>;

/** A parameter's last value, as Glance's MultiDict gives it to a controller. */
export function lastValue(pairs: QueryPairs, name: string): string | undefined {
  return pairs.filter(([key]) => key === name).at(-1)?.[1];
}
