import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';

// Keyset paging: the rows strictly after a marker row in a sort order, with NULL the smallest value of
// each key (as orderNullsLow sorts it on every engine).

export interface KeysetKey {
  /** A column reference (`images.name`). */
  column: string;
  dir: 'asc' | 'desc';
}

/** Shared by the queries of several tables. */
type AnyEB = ExpressionBuilder<any, any>;

/** Rows after `marker` (its value of each key, by column) in the order of `keys`: beyond it on the first key that differs. */
export function afterMarker(eb: AnyEB, keys: KeysetKey[], marker: (column: string) => unknown): Expression<SqlBool> {
  return eb.or(keys.map((key, i) => eb.and([...keys.slice(0, i).map((k) => same(eb, k.column, marker(k.column))), after(eb, key, marker(key.column))])));
}

function after(eb: AnyEB, key: KeysetKey, value: unknown): Expression<SqlBool> {
  const ref = sql.ref(key.column);
  if (key.dir === 'asc') return value === null ? eb(ref, 'is not', null) : eb(ref, '>', value);
  return value === null ? eb.lit(false) : eb.or([eb(ref, '<', value), eb(ref, 'is', null)]);
}

function same(eb: AnyEB, column: string, value: unknown): Expression<SqlBool> {
  const ref = sql.ref(column);
  return value === null ? eb(ref, 'is', null) : eb(ref, '=', value);
}
