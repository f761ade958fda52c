import { gazeError } from './errors.ts';
import { READ_ONLY_PROPERTIES, RESERVED_PROPERTIES, isReservedNamespace } from './image.ts';

// Glance's JSON-patch dialect for images: RFC 6902 add/remove/replace (v2.1 media type) or the
// draft-04 `{"add": "/x"}` form (v2.0), single-segment pointers except for locations.

export const PATCH_MEDIA_TYPES = {
  'application/openstack-images-v2.1-json-patch': 'v2.1',
  'application/openstack-images-v2.0-json-patch': 'v2.0',
} as const;
export type PatchDialect = (typeof PATCH_MEDIA_TYPES)[keyof typeof PATCH_MEDIA_TYPES];
export const ACCEPT_PATCH = Object.keys(PATCH_MEDIA_TYPES).sort().join(', ');

export type PatchVerb = 'add' | 'remove' | 'replace';
export interface PatchOp {
  op: PatchVerb;
  path: Path;
  value: unknown;
}
/** A decoded pointer: at least one segment (`/` alone is the segment ''). */
type Path = [string, ...string[]];

const VERBS: PatchVerb[] = ['add', 'remove', 'replace'];

function decodePointer(pointer: unknown): Path {
  if (typeof pointer !== 'string') throw gazeError('BAD_REQUEST', `Pointer \`${String(pointer)}\` does not start with "/".`);
  if (!pointer.startsWith('/')) throw gazeError('BAD_REQUEST', `Pointer \`${pointer}\` does not start with "/".`);
  // Glance's checks, in its order: adjacent slashes are looked for after the first character, and every
  // leading slash goes before the split (so `//name` is `name`).
  if (/\/\s*?\//.test(pointer.slice(1))) throw gazeError('BAD_REQUEST', `Pointer \`${pointer}\` contains adjacent "/".`);
  if (pointer.length > 1 && pointer.endsWith('/')) throw gazeError('BAD_REQUEST', `Pointer \`${pointer}\` end with "/".`);
  if (pointer.slice(1).trim() === '/') throw gazeError('BAD_REQUEST', `Pointer \`${pointer}\` does not contains valid token.`);
  if (/~(?![01])/.test(pointer)) throw gazeError('BAD_REQUEST', `Pointer \`${pointer}\` contains "~" not part of a recognized escape sequence.`);
  const [first, ...rest] = pointer
    .replace(/^\/+/, '')
    .split('/')
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~').trim());
  return [first ?? '', ...rest];
}

function readOp(raw: Record<string, unknown>, dialect: PatchDialect): { op: PatchVerb; pointer: unknown } {
  if (dialect === 'v2.1') {
    if (!('op' in raw)) {
      throw gazeError('BAD_REQUEST', 'Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.');
    }
    if (!VERBS.includes(raw.op as PatchVerb)) {
      throw gazeError('BAD_REQUEST', `Invalid operation: \`${String(raw.op)}\`. It must be one of the following: add, remove, replace.`);
    }
    if (!('path' in raw)) throw gazeError('BAD_REQUEST', "Unable to find 'path' in JSON Schema change");
    return { op: raw.op as PatchVerb, pointer: raw.path };
  }
  const [verb, ...others] = VERBS.filter((v) => v in raw);
  if (verb === undefined) throw gazeError('BAD_REQUEST', 'Operation objects must contain exactly one member named "add", "remove", or "replace".');
  if (others.length > 0) throw gazeError('BAD_REQUEST', 'Operation objects must contain only one member named "add", "remove", or "replace".');
  return { op: verb, pointer: raw[verb] };
}

/**
 * Parses and checks every operation before any is applied, as Glance's deserializer does:
 * shape (400), pointer (400), read-only and reserved roots (403). Value schema checks are the caller's.
 */
export function parsePatch(body: unknown, dialect: PatchDialect): PatchOp[] {
  if (!Array.isArray(body)) throw gazeError('BAD_REQUEST', 'Request body must be a JSON array of operation objects.');
  return body.map((raw) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw gazeError('BAD_REQUEST', 'Operations must be JSON objects.');
    const record = raw as Record<string, unknown>;
    const { op, pointer } = readOp(record, dialect);
    if (op !== 'remove' && !('value' in record)) throw gazeError('BAD_REQUEST', `Operation "${op}" requires a member named "value".`);
    const path = decodePointer(pointer);
    const root = path[0];
    const depthOk = root === 'locations' ? path.length === (op === 'replace' ? 1 : 2) : path.length === 1;
    if (!depthOk) throw gazeError('BAD_REQUEST', `Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    // `stores` is computed, not an attribute: removing it is a missing property to Glance (Horizon
    // sends such removals), setting it is refused.
    if (root === 'stores' && op === 'remove') throw gazeError('PROPERTY_MISSING', root);
    if ((READ_ONLY_PROPERTIES as readonly string[]).includes(root) || root === 'stores') throw gazeError('ATTRIBUTE_READ_ONLY', root);
    if ((RESERVED_PROPERTIES as readonly string[]).includes(root) || isReservedNamespace(root)) throw gazeError('ATTRIBUTE_RESERVED', root);
    return { op, path, value: record.value };
  });
}
