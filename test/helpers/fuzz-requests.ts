// Random requests built from the Image API's own vocabulary (its routes, query parameters, body fields,
// patch paths and headers) with hostile values, for the fuzz test and the side-by-side fuzz with Glance.
// Seeded: the same seed gives the same requests.

/** mulberry32: small, seeded, good enough to pick among choices. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const ROUTES = [
  '/',
  '/versions',
  '/healthcheck',
  '/v2/images',
  '/v2/images/{id}',
  '/v2/images/{id}/file',
  '/v2/images/{id}/stage',
  '/v2/images/{id}/import',
  '/v2/images/{id}/locations',
  '/v2/images/{id}/members',
  '/v2/images/{id}/members/{member}',
  '/v2/images/{id}/tags/{tag}',
  '/v2/images/{id}/tasks',
  '/v2/images/{id}/actions/deactivate',
  '/v2/images/{id}/actions/reactivate',
  '/v2/stores/{store}/{id}',
  '/v2/cache',
  '/v2/cache/{id}',
  '/v2/info/import',
  '/v2/info/stores',
  '/v2/info/stores/detail',
  '/v2/info/usage',
  '/v2/tasks',
  '/v2/tasks/{task}',
  '/v2/schemas/image',
  '/v2/schemas/images',
  '/v2/schemas/member',
  '/v2/schemas/task',
  '/v2/schemas/metadefs/namespace',
  '/v2/metadefs/namespaces',
  '/v2/metadefs/resource_types',
  '/v2/metadefs/namespaces/{ns}',
  '/v2/metadefs/namespaces/{ns}/objects',
  '/v2/metadefs/namespaces/{ns}/objects/{name}',
  '/v2/metadefs/namespaces/{ns}/properties',
  '/v2/metadefs/namespaces/{ns}/properties/{name}',
  '/v2/metadefs/namespaces/{ns}/tags',
  '/v2/metadefs/namespaces/{ns}/tags/{name}',
  '/v2/metadefs/namespaces/{ns}/resource_types',
  '/v2/metadefs/namespaces/{ns}/resource_types/{name}',
  '/v2/images/{id}/nonexistent',
  '/v3/images',
];
const METHODS = ['GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'PATCH', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND'];
export const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

const WEIRD_STRINGS = [
  '',
  ' ',
  'a',
  '0',
  '-1',
  '1e309',
  '9007199254740993',
  '99999999999999999999999',
  'null',
  'true',
  '"',
  "'",
  '\\',
  '%',
  '%00',
  '%2F',
  '%ZZ',
  '..',
  '../..',
  '/',
  'x'.repeat(300),
  'é',
  '💥',
  '\u0000',
  '\u202e',
  'in:a,b',
  'in:"a,b"',
  'gte:2020-01-01T00:00:00Z',
  'lt:',
  'neq:x',
  'eq:',
  '2020-13-45T99:99:99Z',
  'raw',
  'bare',
  'public',
  'private',
  'shared',
  'community',
  'active',
  'queued',
  'created_at',
  'name',
  'asc',
  'desc',
  'name:asc,size:desc',
  'name:sideways',
  ',,,',
  'http://127.0.0.1:1/x',
  'file:///etc/passwd',
  'ftp://x',
  '00000000-0000-4000-8000-000000000000',
];
const FIELDS = [
  'name',
  'id',
  'disk_format',
  'container_format',
  'visibility',
  'min_ram',
  'min_disk',
  'protected',
  'os_hidden',
  'tags',
  'status',
  'owner',
  'size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'locations',
  'direct_url',
  'self',
  'file',
  'schema',
  'created_at',
  'member',
  'method',
  'uri',
  'glance_region',
  'glance_image_id',
  'glance_service_interface',
  'stores',
  'all_stores',
  'all_stores_must_succeed',
  'type',
  'input',
  'import_from',
  'import_from_format',
  'image_properties',
  'image_id',
  'import_req',
  'url',
  'metadata',
  'validation_data',
  'namespace',
  'display_name',
  'description',
  'resource_type_associations',
  'properties',
  'objects',
  'required',
  'title',
  'enum',
  'items',
  'minimum',
  'maximum',
  'prefix',
  'properties_target',
  'hw_disk_bus',
  'os_glance_import_task',
  'os_glance_foo',
  'x'.repeat(300),
  '',
];
const PATCH_PATHS = [
  '/name',
  '/min_ram',
  '/min_disk',
  '/visibility',
  '/protected',
  '/os_hidden',
  '/tags',
  '/tags/0',
  '/locations',
  '/locations/0',
  '/locations/-',
  '/locations/99',
  '/locations/-1',
  '/disk_format',
  '/container_format',
  '/status',
  '/id',
  '/owner',
  '/size',
  '/checksum',
  '/os_glance_import_task',
  '/hw_disk_bus',
  '/a~1b',
  '/a~2b',
  '/a/b',
  '/',
  '',
  'name',
  '/' + 'p'.repeat(300),
];
const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'application/openstack-images-v2.1-json-patch',
  'application/openstack-images-v2.0-json-patch',
  'application/octet-stream',
  'text/plain',
  'application/json; charset=latin1',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'garbage',
  '',
];
const QUERY_KEYS = [
  'limit',
  'marker',
  'sort_key',
  'sort_dir',
  'sort',
  'name',
  'status',
  'visibility',
  'member_status',
  'owner',
  'size_min',
  'size_max',
  'tag',
  'os_hidden',
  'protected',
  'created_at',
  'updated_at',
  'disk_format',
  'id',
  'type',
  'resource_types',
  'namespace',
  'hw_disk_bus',
  'force',
  'x',
];

type Pick = <T>(items: readonly T[]) => T;

const DEEP_MARKER = '\u0001deep\u0001';
/** The body's text with each marker replaced by arrays nested 5,000 deep. */
function withDeepNesting(text: string): string {
  return text.replaceAll(JSON.stringify(DEEP_MARKER), `${'['.repeat(5000)}${']'.repeat(5000)}`);
}

/** Valid bodies to start from, by method and path: the fuzz then spoils one or two of their fields. */
const TEMPLATES: Array<[RegExp, () => Record<string, unknown>]> = [
  [/^POST \/v2\/images$/, () => ({ name: 'fuzz', disk_format: 'raw', container_format: 'bare', visibility: 'private', tags: ['a'], min_ram: 1 })],
  [/^POST \/v2\/images\/[^/]+\/members$/, () => ({ member: 'bob-project' })],
  [/^PUT \/v2\/images\/[^/]+\/members\/[^/]+$/, () => ({ status: 'accepted' })],
  [
    /^POST \/v2\/images\/[^/]+\/locations$/,
    () => ({ url: 'http://127.0.0.1:1/x', validation_data: { os_hash_algo: 'sha512', os_hash_value: 'a'.repeat(128) } }),
  ],
  [
    /^POST \/v2\/tasks$/,
    () => ({ type: 'import', input: { import_from: 'http://127.0.0.1:1/x', import_from_format: 'raw', image_properties: { name: 'n' } } }),
  ],
  [/^(POST|PUT) \/v2\/metadefs\/namespaces(\/[^/]+)?$/, () => ({ namespace: 'Fuzz::NS2', display_name: 'd', visibility: 'public', protected: false })],
  [/\/objects(\/[^/]+)?$/, () => ({ name: 'o', required: ['p'], properties: { p: { type: 'string', title: 'p' } } })],
  [/\/properties(\/[^/]+)?$/, () => ({ name: 'p', type: 'integer', title: 'p', minimum: 0, maximum: 9 })],
  [/\/tags(\/[^/]+)?$/, () => ({ name: 't', tags: [{ name: 't1' }, { name: 't2' }] })],
  [/\/resource_types$/, () => ({ name: 'OS::Glance::Image', prefix: 'fuzz_', properties_target: 'image' })],
];

/**
 * Requests at random: `ids` holds the values to put where a route names a parameter (image, task, ns, …),
 * `allows` each route's methods, `callers` the identity headers of each caller to choose from.
 */
export function requestGenerator(seed: number, ids: Record<string, string[]>, allows: Map<string, string[]>, callers: Array<Record<string, string>>) {
  const next = random(seed);
  const pick: Pick = (items) => items[Math.floor(next() * items.length)]!;
  const chance = (p: number) => next() < p;

  function value(depth = 0): unknown {
    const kind = Math.floor(next() * (depth > 2 ? 7 : 10));
    switch (kind) {
      case 0:
        return null;
      case 1:
        return chance(0.5);
      case 2:
        return pick([0, -1, 1, 1.5, 2 ** 31, 2 ** 53 + 2, -1e308, 1e21]);
      case 3:
      case 4:
      case 5:
        return pick(WEIRD_STRINGS);
      case 6:
        return pick([...ids.image!, ...ids.task!]);
      case 7:
      case 8:
        // Now and then nesting deeper than anything prints (Glance fails on it with a 500): a marker the
        // body's text replaces, as the value is too deep to serialize.
        if (chance(0.1)) return DEEP_MARKER;
        return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
      default:
        return object(depth + 1);
    }
  }
  function object(depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const n = Math.floor(next() * 5);
    for (let i = 0; i < n; i++) out[pick(FIELDS)] = value(depth);
    return out;
  }
  /** A plausible body, most of the time close to a valid one with one or two hostile fields. */
  function body(path: string, method: string): string | Buffer | undefined {
    if (chance(0.08)) return pick(['', '{', '[]', 'null', '"x"', '{"a":1}{', '\u0000\u0001', '{"name":"\ud800"}', '1'.repeat(70_000)]);
    if (chance(0.05)) return Buffer.from(Array.from({ length: 64 }, () => Math.floor(next() * 256)));
    if (method === 'PATCH') {
      const ops = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
        const op: Record<string, unknown> = { op: pick(['add', 'replace', 'remove', 'test', 'move', 'copy', 'ADD', 'bogus']), path: pick(PATCH_PATHS) };
        if (chance(0.8)) op.value = chance(0.3) ? { url: pick(WEIRD_STRINGS), metadata: value(2) } : value(1);
        if (chance(0.1)) op.from = pick(PATCH_PATHS);
        if (chance(0.1)) op[pick(FIELDS)] = value(2);
        return op;
      });
      return withDeepNesting(JSON.stringify(chance(0.9) ? ops : ops[0]));
    }
    if (path.endsWith('/import')) {
      const methodBody: Record<string, unknown> = { name: pick(['glance-direct', 'web-download', 'copy-image', 'glance-download', 'x', '']) };
      if (chance(0.6)) methodBody.uri = pick(WEIRD_STRINGS);
      if (chance(0.3)) methodBody.glance_image_id = pick([...ids.image!, ...WEIRD_STRINGS]);
      if (chance(0.3)) methodBody.glance_region = pick(WEIRD_STRINGS);
      const out: Record<string, unknown> = { method: chance(0.9) ? methodBody : value(1) };
      if (chance(0.3)) out.stores = value(1);
      if (chance(0.3)) out.all_stores = value(0);
      return withDeepNesting(JSON.stringify({ ...out, ...(chance(0.3) ? object(1) : {}) }));
    }
    const template = TEMPLATES.find(([pattern]) => pattern.test(`${method} ${path.split('?')[0]}`));
    if (template && chance(0.7)) {
      const start = template[1]();
      const keys = Object.keys(start);
      if (chance(0.6)) start[chance(0.5) ? pick(keys) : pick(FIELDS)] = value(1);
      if (chance(0.3)) delete start[pick(keys)];
      return withDeepNesting(JSON.stringify(start));
    }
    return withDeepNesting(JSON.stringify(chance(0.85) ? object(0) : value(0)));
  }
  function route(template: string): string {
    return template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const known = ids[name === 'member' ? 'project' : name === 'store' ? 'store' : name];
      const raw = known && chance(0.7) ? pick(known) : pick(WEIRD_STRINGS);
      return chance(0.15) ? raw : encodeURIComponent(raw);
    });
  }
  function query(): string {
    if (!chance(0.4)) return '';
    const pairs = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
      const key = pick(QUERY_KEYS);
      const v = chance(0.2) ? pick([...ids.image!, ...ids.task!]) : pick(WEIRD_STRINGS);
      return chance(0.15) ? `${key}=${v}` : `${encodeURIComponent(key)}=${encodeURIComponent(v)}`;
    });
    // A parameter given twice: Glance reads some repeats by their first value, others by their last.
    if (chance(0.25)) pairs.push(`${pick(pairs).split('=')[0]}=${encodeURIComponent(pick(WEIRD_STRINGS))}`);
    return `?${pairs.join('&')}`;
  }
  function headers(caller: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...caller };
    const type = pick(CONTENT_TYPES);
    if (type) h['content-type'] = type;
    if (chance(0.1)) h.range = pick(['bytes=0-0', 'bytes=5-1', 'bytes=-3', 'bytes=0-', 'bytes=0-1,3-4', 'bytes=99999999-', 'lines=1-2', 'bytes=x']);
    if (chance(0.08)) h['content-range'] = pick(['bytes 0-3/4', 'bytes */4', 'garbage']);
    if (chance(0.08)) h['x-image-meta-store'] = pick(WEIRD_STRINGS.filter(isHeaderSafe));
    if (chance(0.05)) h['x-openstack-image-import-stores'] = pick(WEIRD_STRINGS.filter(isHeaderSafe));
    if (chance(0.05)) h['x-image-cache-clear-target'] = pick(['cache', 'queue', 'both', 'x']);
    if (chance(0.05)) h['x-openstack-request-id'] = pick(WEIRD_STRINGS.filter(isHeaderSafe));
    if (chance(0.05)) h['x-roles'] = pick(['admin', '', 'reader', 'member,admin', ',,']);
    return h;
  }
  return {
    request() {
      const template = pick(ROUTES);
      // Mostly a method the route answers (as its OPTIONS lists them), so that requests reach the handlers.
      const allowed = allows.get(template) ?? [];
      const method = allowed.length && chance(0.85) ? pick(allowed) : pick(METHODS);
      const path = route(template) + query();
      const caller = pick(callers);
      const withBody = !['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE'].includes(method) || chance(0.05);
      return { method, path, headers: headers(caller), body: withBody ? body(path, method) : undefined };
    },
  };
}

const isHeaderSafe = (s: string) => /^[\x20-\x7e]*$/.test(s);

/** Each route's methods, as its OPTIONS answer lists them (`options` sends one to a path and returns its Allow). */
export async function routeMethods(ids: Record<string, string[]>, options: (path: string) => Promise<string | null>): Promise<Map<string, string[]>> {
  const allows = new Map<string, string[]>();
  for (const template of ROUTES) {
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(ids[name === 'member' ? 'project' : name]![0]!));
    const allow = await options(path);
    allows.set(
      template,
      (allow ?? '')
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean),
    );
  }
  return allows;
}
