import { HttpTimeoutError, request, type HttpResponse } from './http-client.ts';
import type { FastifyRequest } from 'fastify';
import { gazeError, GazeError } from '../domain/errors.ts';

// Distributed import (spec import.md §7): a request that needs data staged on another worker is replayed
// there, with the caller's identity, and that worker's answer is passed back.

// keystonemiddleware takes the token from X-Storage-Token too: a client that sends it is the same caller there.
const FORWARDED_HEADERS = [
  'x-auth-token',
  'x-storage-token',
  'x-project-id',
  'x-tenant-id',
  'x-user-id',
  'x-roles',
  'x-openstack-request-id',
  'x-image-meta-store',
];
/** Marks a forwarded request: one hop only, so that two nodes that name each other wrongly never loop. */
const FORWARDED_MARK = 'x-gaze-forwarded';
const TIMEOUT_MS = 60_000;

export interface Forwarded {
  status: number;
  requestId: string | null;
}

/**
 * Glance's answers when the stage host cannot be asked: 504 when no connection could be made (requests'
 * ConnectionError: refused, unreachable, a name that does not resolve, a TLS handshake that failed, a
 * connection reset), 502 for the rest (no answer in time once connected, a URL that is not one).
 */
export function unavailable(err: unknown): GazeError {
  const code = (err as { code?: unknown }).code;
  const notAUrl = err instanceof TypeError || code === 'ERR_INVALID_URL' || code === 'ERR_INVALID_PROTOCOL';
  const noAnswerInTime = err instanceof HttpTimeoutError || ['TimeoutError', 'AbortError'].includes((err as Error).name);
  return gazeError(notAUrl || noAnswerInTime ? 'STAGE_HOST_BAD_GATEWAY' : 'STAGE_HOST_TIMEOUT');
}

export async function forwardToStageHost(stageHost: string, incoming: FastifyRequest, body: unknown): Promise<Forwarded> {
  if (incoming.headers[FORWARDED_MARK] !== undefined) throw gazeError('STAGE_HOST_LOOP', stageHost);
  const url = `${stageHost.replace(/\/+$/, '')}${incoming.url}`;
  incoming.log.info(`Proxying ${incoming.method} request to host ${stageHost} which has image staged`);
  const headers: Record<string, string> = { [FORWARDED_MARK]: '1' };
  for (const name of FORWARDED_HEADERS) {
    const value = incoming.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: HttpResponse;
  try {
    response = await request(url, {
      method: incoming.method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeoutMs: TIMEOUT_MS,
      signal: AbortSignal.timeout(TIMEOUT_MS),
      agent: false,
    });
    await response.body.dump();
  } catch (err) {
    incoming.log.error({ err }, `Failed to proxy to ${url}: ${(err as Error).message}`);
    throw unavailable(err);
  }
  const requestId = response.headers['x-openstack-request-id'];
  if (response.statusCode >= 200 && response.statusCode < 300) {
    return { status: response.statusCode, requestId: typeof requestId === 'string' ? requestId : null };
  }
  // The stage host's refusal, as Glance passes it on: its status, without its body.
  incoming.log.warn(`The stage host ${stageHost} answered ${response.statusCode} to ${incoming.method} ${incoming.url}`);
  const refused = gazeError('STAGE_HOST_REFUSED');
  throw new GazeError(refused.code, response.statusCode, refused.message);
}
