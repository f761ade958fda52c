// The request a piece of work is done for, carried through its asynchronous calls: every line logged
// meanwhile names the request's id (reqId), as Glance's lines carry their context's request id, the
// lines of the services a request calls and of the import task it starts included.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from 'pino';

const scope = new AsyncLocalStorage<string>();

/**
 * Runs `work` (and what it starts) for the request `reqId`; with none, for no request (work that
 * outlives the request that happened to start it: a queue another request's work joins later).
 */
export function forRequest<T>(reqId: string | null | undefined, work: () => T): T {
  return reqId ? scope.run(reqId, work) : scope.exit(work);
}

/** Whether a logger names the request itself (fastify's request logger does). */
const namesRequest = new WeakMap<Logger, boolean>();

/** pino's mixin: the request's id on a line whose logger does not carry it already. */
export function requestIdMixin(_line: object, _level: number, logger: Logger): { reqId?: string } {
  const reqId = scope.getStore();
  if (reqId === undefined) return {};
  let named = namesRequest.get(logger);
  if (named === undefined) namesRequest.set(logger, (named = 'reqId' in logger.bindings()));
  return named ? {} : { reqId };
}
