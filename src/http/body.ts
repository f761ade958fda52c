import type { FastifyRequest } from 'fastify';
import { gazeError } from '../domain/errors.ts';

const MAX_JSON_BYTES = 8 << 20;

export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined && length !== '0') return true;
  return request.headers['transfer-encoding'] !== undefined && ['POST', 'PUT', 'PATCH'].includes(request.method);
}

/** Routes that take no body refuse one (Glance: "A body is not expected with this request."). */
export function assertNoBody(request: FastifyRequest): void {
  if (hasBody(request)) throw gazeError('BODY_NOT_EXPECTED');
}

async function readText(request: FastifyRequest): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) throw gazeError('REQUEST_TOO_LARGE');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The request's JSON body, whatever its Content-Type (as Glance parses it). Must be an object or an
 * array; `undefined` when the request has no body at all.
 */
export async function readJson(request: FastifyRequest): Promise<unknown> {
  if (!hasBody(request)) return undefined;
  const text = await readText(request);
  if (text.trim() === '') return undefined;
  let value: unknown;
  let nul = false;
  try {
    // NUL cannot be stored by PostgreSQL (and Glance's MySQL refuses it too): refused in keys and strings.
    value = JSON.parse(text, (key, v) => {
      if (key.includes('\0') || (typeof v === 'string' && v.includes('\0'))) nul = true;
      return v;
    });
  } catch {
    throw gazeError('MALFORMED_JSON');
  }
  if (nul) throw gazeError('NUL_CHARACTER');
  if (value === null || typeof value !== 'object') throw gazeError('UNEXPECTED_BODY_TYPE');
  return value;
}

export async function readJsonObject(request: FastifyRequest): Promise<Record<string, unknown>> {
  const body = await readJson(request);
  if (body === undefined) throw gazeError('BODY_EXPECTED');
  if (Array.isArray(body)) throw gazeError('SCHEMA_MISMATCH', 'image', `${JSON.stringify(body)} is not of type 'object'`);
  return body as Record<string, unknown>;
}
