import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { gazeError } from '../domain/errors.ts';

/**
 * PostgreSQL cannot store a NUL character (and MySQL refuses it too): a query that would carry one in a
 * parameter is refused with 400 before it is sent, whatever the request put it there (a path, a filter,
 * a body). Checked here, where the value reaches the database, so the request's other checks keep
 * Glance's order.
 */
export class RefuseNulPlugin implements KyselyPlugin {
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    refuseNulIn(args.node);
    return args.node;
  }

  transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(args.result);
  }
}

/** Walks the query's nodes (plain objects) for the values it binds: no copy of the tree. */
function refuseNulIn(node: unknown): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) refuseNulIn(item);
    return;
  }
  const { kind } = node as { kind?: string };
  if (kind === 'ValueNode') return refuseNulValue((node as { value: unknown }).value);
  if (kind === 'PrimitiveValueListNode') return (node as { values: readonly unknown[] }).values.forEach(refuseNulValue);
  for (const child of Object.values(node)) refuseNulIn(child);
}

export function refuseNulValue(value: unknown): void {
  if (typeof value === 'string' && value.includes('\0')) throw gazeError('NUL_CHARACTER');
}
