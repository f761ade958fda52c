import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/http/paging.ts';
import { glanceJson } from '../../src/http/glance-json.ts';

test('a page serialized item by item has the bytes of glanceJson', () => {
  const bodies: Array<Record<string, unknown>> = [
    { images: [], first: '/v2/images', schema: '/v2/schemas/images' },
    { images: [{ id: 'a', name: 'café ☃ "quoted"\n', tags: ['x', 'é'], size: null, nested: { deep: [1, 2.5, true] } }, { id: 'b' }] },
    { tasks: [{ id: 't' }], first: '/v2/tasks?limit=1', next: undefined, schema: '/v2/schemas/tasks' },
    { namespaces: [{ namespace: 'OS::Compute' }], next: '/v2/metadefs/namespaces?marker=OS', schema: '/v2/schemas/metadefs/namespaces' },
    { list: [undefined, null, 'x'], count: 3 },
    {},
  ];
  for (const body of bodies) {
    const bytes = pageBytes(body);
    assert.equal(bytes.toString('utf8'), glanceJson(body));
    assert.equal(bytes.length, Buffer.byteLength(glanceJson(body)));
  }
});
