import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, type Caller } from '../helpers/http.ts';

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
const ids: Record<string, string> = {};

async function names(query: string, as?: Caller): Promise<string[]> {
  const r = await api.get(`/v2/images${query}`, { as });
  assert.equal(r.status, 200, r.text);
  return r.json.images.map((i: any) => i.name).sort();
}

before(async () => {
  gaze = await startGazeInProcess();
  api = client(gaze.url);
  const make = async (name: string, fields: Record<string, unknown>, as: Caller) => {
    ids[name] = (await api.createImage({ name, ...fields }, as)).id;
  };
  await make('alice-private', { visibility: 'private', os_distro: 'debian', tags: ['blue', 'big'] }, alice);
  await make('alice-shared', { visibility: 'shared', os_distro: 'ubuntu', tags: ['blue'] }, alice);
  await make('alice-community', { visibility: 'community' }, alice);
  await make('alice-hidden', { os_hidden: true }, alice);
  await make('bob-private', { visibility: 'private', disk_format: 'qcow2' }, bob);
  await make('bob-community', { visibility: 'community' }, bob);
  await make('bob-shared-accepted', { visibility: 'shared' }, bob);
  await make('bob-shared-pending', { visibility: 'shared' }, bob);
  await make('admin-public', { visibility: 'public', protected: true, min_ram: 1024 }, {});
  await api.upload(ids['admin-public'], 'x'.repeat(1000));
  for (const name of ['bob-shared-accepted', 'bob-shared-pending']) {
    assert.equal((await api.post(`/v2/images/${ids[name]}/members`, { member: 'alice-project' }, { as: bob })).status, 200);
  }
  assert.equal((await api.put(`/v2/images/${ids['bob-shared-accepted']}/members/alice-project`, { json: { status: 'accepted' }, as: alice })).status, 200);
});
after(async () => {
  await gaze.stop();
});

test('a non-admin lists public, own and accepted shared images, not others community or hidden', async () => {
  assert.deepEqual(await names('', alice), ['admin-public', 'alice-community', 'alice-private', 'alice-shared', 'bob-shared-accepted']);
});

test('visibility and member_status filters select the documented sets', async () => {
  assert.deepEqual(await names('?visibility=community', alice), ['alice-community', 'bob-community']);
  assert.deepEqual(await names('?visibility=private', alice), ['alice-private']);
  assert.deepEqual(await names('?visibility=public', alice), ['admin-public']);
  assert.deepEqual(await names('?visibility=shared', alice), ['alice-shared', 'bob-shared-accepted']);
  assert.deepEqual(await names('?visibility=shared&member_status=pending', alice), ['alice-shared', 'bob-shared-pending']);
  assert.deepEqual(await names('?member_status=all', alice), [
    'admin-public',
    'alice-community',
    'alice-private',
    'alice-shared',
    'bob-shared-accepted',
    'bob-shared-pending',
  ]);
  assert.deepEqual(await names('?visibility=all', alice), [
    'admin-public',
    'alice-community',
    'alice-private',
    'alice-shared',
    'bob-community',
    'bob-shared-accepted',
  ]);
  expectError(await api.get('/v2/images?visibility=everyone', { headers: JSON_ACCEPT }), 400, 'Invalid visibility value: everyone');
  // The last value counts, as in Glance's MultiDict; an empty one matches no image.
  assert.equal((await api.get('/v2/images?visibility=everyone&visibility=private')).status, 200);
  expectError(await api.get('/v2/images?visibility=private&visibility=everyone', { headers: JSON_ACCEPT }), 400, 'Invalid visibility value: everyone');
  assert.deepEqual((await api.get('/v2/images?visibility=')).json.images, []);
  expectError(await api.get('/v2/images?member_status=maybe', { headers: JSON_ACCEPT }), 400, 'Invalid status: maybe');
  // Several faults: the one Glance's deserializer meets first (scope, member status, limit, sorting, the rest).
  expectError(await api.get('/v2/images?sort_key=colour&member_status=maybe', { headers: JSON_ACCEPT }), 400, 'Invalid status: maybe');
  expectError(await api.get('/v2/images?limit=x&member_status=maybe&visibility=everyone', { headers: JSON_ACCEPT }), 400, 'Invalid visibility value: everyone');
  expectError(await api.get('/v2/images?protected=maybe&limit=x', { headers: JSON_ACCEPT }), 400, 'limit param must be an integer');
  expectError(
    await api.get('/v2/images?protected=maybe&os_hidden=perhaps', { headers: JSON_ACCEPT }),
    400,
    "Invalid value 'perhaps' for 'os_hidden' filter. Valid values are 'true' or 'false'.",
  );
});

test('an admin lists every project, but not other projects community images unless asked', async () => {
  const all = await names('', {});
  assert.ok(all.includes('bob-private') && all.includes('alice-private'));
  assert.ok(!all.includes('bob-community') && !all.includes('alice-hidden'));
  assert.ok((await names('?visibility=community', {})).includes('bob-community'));
});

test('os_hidden, protected, tag, property and column filters', async () => {
  assert.deepEqual(await names('?os_hidden=true', alice), ['alice-hidden']);
  assert.deepEqual(await names('?os_hidden=TRUE', alice), ['alice-hidden']);
  expectError(
    await api.get('/v2/images?os_hidden=maybe', { headers: JSON_ACCEPT }),
    400,
    "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'.",
  );
  assert.deepEqual(await names('?protected=true', alice), ['admin-public']);
  expectError(
    await api.get('/v2/images?protected=True', { headers: JSON_ACCEPT }),
    400,
    "Invalid value 'True' for 'protected' filter. Valid values are 'true' or 'false'.",
  );
  assert.deepEqual(await names('?tag=blue', alice), ['alice-private', 'alice-shared']);
  assert.deepEqual(await names('?tag=blue&tag=big', alice), ['alice-private']);
  assert.deepEqual(await names('?os_distro=ubuntu', alice), ['alice-shared']);
  assert.deepEqual(await names('?name=alice-private', alice), ['alice-private']);
  assert.deepEqual(await names('?name=in:alice-private,"alice-shared"', alice), ['alice-private', 'alice-shared']);
  // Glance's split of an `in:` list: a trailing comma adds no value, an empty list matches nothing, a
  // lone comma is the empty value, and an escaped quote stays in its value.
  const unnamed = await api.createImage({ name: '', os_distro: 'in-list' }, alice);
  assert.deepEqual(await names('?name=in:alice-private,', alice), ['alice-private']);
  assert.deepEqual(await names('?os_distro=in-list&name=in:alice-private,', alice), []);
  assert.deepEqual(await names('?os_distro=in-list&name=in:"alice-private",', alice), []);
  assert.deepEqual(await names('?os_distro=in-list&name=in:', alice), []);
  assert.deepEqual(await names('?os_distro=in-list&name=in:x,,y', alice), ['']);
  // The backslash stays: only an image named with it is found.
  const escaped = await api.createImage({ name: 'q\\"uote', os_distro: 'in-list' }, alice);
  assert.deepEqual(await names(`?os_distro=in-list&name=in:${encodeURIComponent('"q\\"uote"')}`, alice), ['q\\"uote']);
  assert.equal((await api.del(`/v2/images/${escaped.id}`, { as: alice })).status, 204);
  assert.equal((await api.del(`/v2/images/${unnamed.id}`, { as: alice })).status, 204);
  expectError(
    await api.get('/v2/images?name=in:"alice"x', { headers: JSON_ACCEPT }),
    400,
    'Invalid filter value "alice"x. There is no comma after closing quotation mark.',
  );
  expectError(
    await api.get('/v2/images?name=in:a"b"', { headers: JSON_ACCEPT }),
    400,
    'Invalid filter value a"b". There is no comma before opening quotation mark.',
  );
  assert.deepEqual(await names('?name=eq:alice-shared', alice), ['alice-shared']);
  assert.deepEqual(await names('?disk_format=qcow2', {}), ['bob-private']);
  assert.deepEqual(await names('?status=active', alice), ['admin-public']);
  assert.deepEqual(await names('?owner=bob-project', {}), ['bob-private', 'bob-shared-accepted', 'bob-shared-pending']);
  assert.deepEqual(await names('?min_ram=1024', alice), ['admin-public']);
  assert.deepEqual(await names('?size_min=1000&size_max=1000', alice), ['admin-public']);
  assert.deepEqual(await names('?size_min=1001', alice), []);
  expectError(await api.get('/v2/images?size_min=big', { headers: JSON_ACCEPT }), 400, 'Unable to filter on a range with a non-numeric value.');
  // A range bound is read as Python's int() reads it: a sign, underscores between digits, spaces around.
  assert.deepEqual(await names('?size_min=%2B1_000&size_max=%201000%20', alice), ['admin-public']);
  assert.deepEqual(await names('?size_min=-1', alice), ['admin-public'], 'every image with a size (SQL: a null size is in no range)');
  assert.deepEqual(await names('?min_ram_min=-99999999999999999999', alice), await names('', alice), 'below anything a column holds');
  assert.deepEqual(await names('?size_max=-5', alice), []);
  for (const bad of ['1__0', '1.5', '_1', '1_', '- 1']) {
    expectError(
      await api.get(`/v2/images?size_min=${encodeURIComponent(bad)}`, { headers: JSON_ACCEPT }),
      400,
      'Unable to filter on a range with a non-numeric value.',
    );
  }
  expectError(
    await api.get('/v2/images?min_ram=3000000000', { headers: JSON_ACCEPT }),
    400,
    "Invalid value '3000000000' for parameter 'min_ram': Cannot be greater than 2147483647",
  );
  expectError(await api.get('/v2/images?min_disk_max=2147483648', { headers: JSON_ACCEPT }), 400, /Cannot be greater than 2147483647/);
  expectError(await api.get('/v2/images?size_max=99999999999999999999', { headers: JSON_ACCEPT }), 400, /Cannot be greater than 9007199254740991/);
  expectError(await api.get('/v2/images?name=a%00b', { headers: JSON_ACCEPT }), 400, 'Null characters are not allowed in requests.');
  // Only where a value reaches the database: a query no route reads is ignored, as Glance ignores it.
  assert.equal((await api.get('/v2/info/usage?x=a%00b')).status, 200);
  assert.equal((await api.get('/v2/schemas/image?x=a%00b')).status, 200);
  expectError(await api.get('/v2/images/a%00b', { headers: JSON_ACCEPT }), 400, 'Null characters are not allowed in requests.');
  expectError(await api.get('/v2/images?name=like:x', { headers: JSON_ACCEPT }), 400, "Unable to filter by unknown operator 'like'.");
  expectError(await api.get('/v2/images?name=in:"open', { headers: JSON_ACCEPT }), 400, /The quote is not closed/);
  expectError(await api.get('/v2/images?changes-since=2020-01-01', { headers: JSON_ACCEPT }), 400, 'The "changes-since" filter is no longer available on v2.');
});

test('created_at and updated_at filters take ISO 8601 with operators', async () => {
  const created = (await api.get(`/v2/images/${ids['alice-private']}`, { as: alice })).json.created_at;
  assert.ok((await names(`?created_at=eq:${created}`, alice)).includes('alice-private'));
  assert.ok((await names(`?created_at=lte:${created}`, alice)).includes('alice-private'));
  assert.ok(!(await names(`?created_at=gt:${created}`, alice)).includes('alice-private'));
  assert.ok(!(await names(`?created_at=neq:${created}`, alice)).includes('alice-private'));
  assert.deepEqual(await names('?updated_at=lt:2000-01-01T00:00:00Z', alice), []);
  expectError(
    await api.get('/v2/images?created_at=gt:yesterday', { headers: JSON_ACCEPT }),
    400,
    'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.',
  );
  expectError(await api.get('/v2/images?created_at=near:2020-01-01T00:00:00Z', { headers: JSON_ACCEPT }), 400, 'Unable to filter on a unknown operator.');
  // Glance's order (checked against Glance 25): a value that is a time as a whole is eq; else the time
  // after the first colon is checked before the operator, which is case-sensitive.
  const bad = (column: string) => `Bad "${column}" query filter format. Use ISO 8601 DateTime notation.`;
  expectError(await api.get('/v2/images?updated_at=file:///etc/passwd', { headers: JSON_ACCEPT }), 400, bad('updated_at'));
  expectError(await api.get('/v2/images?created_at=foo:bar', { headers: JSON_ACCEPT }), 400, bad('created_at'));
  for (const op of ['GT', '']) {
    expectError(await api.get(`/v2/images?created_at=${op}:2020-01-01T00:00:00Z`, { headers: JSON_ACCEPT }), 400, 'Unable to filter on a unknown operator.');
  }
  // The iso8601 forms oslo reads, and Python's calendar (no rolling over to another day).
  const second = created.slice(0, 19);
  const compact = second.replace(/[-:]/g, '');
  for (const form of [`${compact}Z`, `${second},0Z`, `${second}-00`, `${second}+00:00`, `${second.slice(0, 10)} ${second.slice(11)}`]) {
    assert.ok((await names(`?created_at=eq:${encodeURIComponent(form)}`, alice)).includes('alice-private'), form);
  }
  assert.ok((await names('?created_at=gte:2020', alice)).includes('alice-private'));
  for (const impossible of ['2020-02-30T00:00:00Z', '2020-01-01T24:00:00Z', '2019-02-29', '2020-13-01']) {
    expectError(await api.get(`/v2/images?created_at=gte:${impossible}`, { headers: JSON_ACCEPT }), 400, bad('created_at'));
  }
  // A threshold with microseconds lies between two stored seconds: never equal, before the next.
  assert.ok(!(await names(`?created_at=eq:${second}.5Z`, alice)).includes('alice-private'));
  assert.ok((await names(`?created_at=neq:${second}.5Z`, alice)).includes('alice-private'));
  assert.ok((await names(`?created_at=lt:${second}.5Z`, alice)).includes('alice-private'));
  assert.ok(!(await names(`?created_at=gt:${second}.5Z`, alice)).includes('alice-private'));
});

test('sorting: keys, directions, both syntaxes, and their errors', async () => {
  const list = async (q: string) => (await api.get(`/v2/images${q}`, { as: alice })).json.images.map((i: any) => i.name);
  const asc = await list('?sort_key=name&sort_dir=asc');
  assert.deepEqual(asc, [...asc].sort());
  assert.deepEqual(await list('?sort=name:desc'), [...asc].reverse());
  assert.deepEqual(await list('?sort=name:asc'), asc);
  // An empty direction is the default one, as in Glance; a blank one is not a direction, unless it ends
  // the parameter (Glance strips the whole parameter first).
  assert.deepEqual(await list('?sort=name:'), [...asc].reverse());
  assert.deepEqual(await list('?sort=name:,id:'), [...asc].reverse());
  assert.deepEqual(await list('?sort=%20name%20:%20asc%20'), asc);
  assert.deepEqual(await list('?sort=name:%20'), [...asc].reverse());
  expectError(await api.get('/v2/images?sort=name:%20,id:asc', { headers: JSON_ACCEPT }), 400, 'Invalid sort direction: ');
  expectError(await api.get('/v2/images?sort=name:asc:x', { headers: JSON_ACCEPT }), 400, 'Invalid sort direction: asc:x');
  const byDefault = (await api.get('/v2/images', { as: alice })).json.images;
  const created = byDefault.map((i: any) => i.created_at);
  assert.deepEqual(created, [...created].sort().reverse(), 'default order is created_at desc');
  expectError(
    await api.get('/v2/images?sort_key=colour', { headers: JSON_ACCEPT }),
    400,
    'Invalid sort key: colour. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.',
  );
  expectError(await api.get('/v2/images?sort_dir=up', { headers: JSON_ACCEPT }), 400, 'Invalid sort direction: up');
  // Glance strips each key and direction, and checks every key before any direction.
  const spaced = (await api.get('/v2/images?sort_key=%20name&sort_dir=asc%20', { as: alice })).json.images.map((i: any) => i.name);
  assert.deepEqual(spaced, [...spaced].sort());
  expectError(await api.get('/v2/images?sort_dir=up&sort_key=bogus', { headers: JSON_ACCEPT }), 400, /^Invalid sort key: bogus\./);
  expectError(
    await api.get('/v2/images?sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc', { headers: JSON_ACCEPT }),
    400,
    'Number of sort dirs does not match the number of sort keys',
  );
  expectError(await api.get('/v2/images?sort=name&sort_key=id', { headers: JSON_ACCEPT }), 400, 'Old and new sorting syntax cannot be combined');
});

test('limit and marker page through the list with first and next links', async () => {
  const full = (await api.get('/v2/images?sort_key=name&sort_dir=asc&member_status=all', { as: alice })).json.images.map((i: any) => i.id);
  const seen: string[] = [];
  let link = '/v2/images?limit=2&sort_key=name&sort_dir=asc&member_status=all';
  let pages = 0;
  for (;;) {
    const page = await api.get(link, { as: alice });
    assert.equal(page.status, 200);
    assert.equal(page.json.first, '/v2/images?limit=2&sort_key=name&sort_dir=asc&member_status=all');
    assert.equal(page.json.schema, '/v2/schemas/images');
    seen.push(...page.json.images.map((i: any) => i.id));
    pages += 1;
    if (!page.json.next) break;
    assert.match(page.json.next, /&marker=[0-9a-f-]{36}$/);
    link = page.json.next;
  }
  assert.deepEqual(seen, full);
  assert.equal(pages, Math.floor(full.length / 2) + 1, 'a final short (or empty) page ends the walk');
  assert.equal((await api.get('/v2/images')).json.first, '/v2/images');
  expectError(await api.get('/v2/images?limit=x', { headers: JSON_ACCEPT }), 400, 'limit param must be an integer');
  // What Python's int() reads is a limit: underscores between digits, digits of any script.
  for (const limit of ['1_0', '%EF%BC%92', '+2', '%202%20']) assert.equal((await api.get(`/v2/images?limit=${limit}`)).status, 200, limit);
  assert.equal((await api.get('/v2/images?limit=%EF%BC%91')).json.images.length, 1);
  expectError(await api.get('/v2/images?limit=1__0', { headers: JSON_ACCEPT }), 400, 'limit param must be an integer');
  // Repeats, as Glance's MultiDict reads them (checked against Glance 25): the first limit, marker and
  // member_status are the parameters, a repeat is a property filter no image has; other filters take
  // their last value; tags are all taken, trimmed.
  assert.equal((await api.get('/v2/images?limit=1&limit=2')).json.images.length, 0);
  assert.equal((await api.get('/v2/images?limit=2&limit=x')).json.images.length, 0);
  expectError(await api.get('/v2/images?limit=x&limit=2', { headers: JSON_ACCEPT }), 400, 'limit param must be an integer');
  assert.equal((await api.get('/v2/images?member_status=all&member_status=bogus')).json.images.length, 0);
  assert.deepEqual(await names('?name=bob-private&name=admin-public', {}), ['admin-public']);
  assert.deepEqual(await names('?os_hidden=bogus&os_hidden=false&name=admin-public', {}), ['admin-public']);
  assert.deepEqual(await names('?size_min=x&size_min=1', {}), ['admin-public']);
  assert.deepEqual(await names('?tag=%20blue%20&tag=big', alice), ['alice-private']);
  // Glance's database pops visibility, checksum and os_hash_value (their first value) before its dict
  // of the rest: a repeat is a second condition on the column. The sorting pops the first `sort` (a
  // second is a property filter); `deleted` is the controller's.
  assert.deepEqual(await names('?visibility=public&visibility=public&name=admin-public', {}), ['admin-public']);
  assert.deepEqual(await names('?visibility=all&visibility=public&name=admin-public', {}), ['admin-public']);
  assert.deepEqual(await names('?visibility=public&visibility=private&name=admin-public', {}), []);
  assert.deepEqual(await names('?visibility=private&visibility=public&name=admin-public', {}), []);
  expectError(await api.get('/v2/images?visibility=public&visibility=bogus', { headers: JSON_ACCEPT }), 400, 'Invalid visibility value: bogus');
  // The last is checked, the first applied: a bogus first value matches nothing (for anyone), never a 500.
  for (const as of [undefined, alice]) {
    const r = await api.get('/v2/images?visibility=bogus&visibility=all', { as, headers: JSON_ACCEPT });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.images, []);
  }
  const checksum = (await api.get(`/v2/images/${ids['admin-public']}`)).json.checksum;
  assert.deepEqual(await names(`?checksum=${checksum}&checksum=${checksum}`, {}), ['admin-public']);
  assert.deepEqual(await names(`?checksum=${checksum}&checksum=nothing`, {}), []);
  assert.deepEqual(await names(`?checksum=nothing&checksum=${checksum}`, {}), []);
  assert.equal((await api.get('/v2/images?sort=name:asc&sort=name:desc')).json.images.length, 0);
  assert.equal((await api.get('/v2/images?sort=name:asc&sort=')).status, 200, 'only the first sort is parsed');
  assert.deepEqual(await names('?deleted=true&name=admin-public', {}), ['admin-public']);
  expectError(await api.get('/v2/images?marker=bogus&marker=', { headers: JSON_ACCEPT }), 400, 'No image found with ID bogus');
  expectError(await api.get('/v2/images?limit=-1', { headers: JSON_ACCEPT }), 400, 'limit param must be positive');
  const missing = '3f0b1c1e-1111-4222-8333-444455556666';
  expectError(await api.get(`/v2/images?marker=${missing}`, { headers: JSON_ACCEPT }), 400, `No image found with ID ${missing}`);
  expectError(
    await api.get(`/v2/images?marker=${ids['bob-private']}`, { as: alice, headers: JSON_ACCEPT }),
    403,
    `Forbidding request, image ${ids['bob-private']} not visible`,
  );
});

test('an admin pages on after a marker image deleted since the last page, as in Glance; for others it is not found', async () => {
  const made: string[] = [];
  for (const name of ['paging-a', 'paging-b', 'paging-c', 'paging-d']) made.push((await api.createImage({ name, visibility: 'public' }, {})).id);
  const first = await api.get('/v2/images?name=in:paging-a,paging-b,paging-c,paging-d&sort=name:asc&limit=2');
  assert.deepEqual(
    first.json.images.map((i: any) => i.name),
    ['paging-a', 'paging-b'],
  );
  assert.equal((await api.del(`/v2/images/${made[1]}`)).status, 204);
  const next = await api.get(first.json.next);
  assert.equal(next.status, 200, next.text);
  assert.deepEqual(
    next.json.images.map((i: any) => i.name),
    ['paging-c', 'paging-d'],
  );
  expectError(await api.get(`/v2/images?marker=${made[1]}`, { as: alice, headers: JSON_ACCEPT }), 400, `No image found with ID ${made[1]}`);
});

test('show hides other projects private images as 404', async () => {
  expectError(await api.get(`/v2/images/${ids['bob-private']}`, { as: alice, headers: JSON_ACCEPT }), 404, `No image found with ID ${ids['bob-private']}`);
  assert.equal((await api.get(`/v2/images/${ids['bob-community']}`, { as: alice })).status, 200);
  assert.equal((await api.get(`/v2/images/${ids['bob-shared-pending']}`, { as: alice })).status, 200, 'a pending member can still show the image');
  expectError(await api.get(`/v2/images/${'a'.repeat(40)}`, { headers: JSON_ACCEPT }), 404, `No image found with ID ${'a'.repeat(40)}`);
});

test('a page is JSON in UTF-8 whose length header counts bytes, not characters', async () => {
  const name = 'Debian – café ☃';
  const id = (await api.createImage({ name, description: 'naïve' }, bob)).id;
  const page = await api.get('/v2/images?limit=1000', { as: bob });
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'application/json');
  assert.equal(Number(page.headers.get('content-length')), Buffer.byteLength(page.text));
  const listed = page.json.images.find((i: any) => i.id === id);
  assert.equal(listed.name, name);
  assert.equal(listed.description, 'naïve');
  // Glance's router has no HEAD on the API's resources.
  const head = await api.call('HEAD', '/v2/images?limit=1000', { as: bob });
  assert.equal(head.status, 405);
  assert.equal(head.headers.get('allow'), 'GET, POST');
  assert.equal((await api.call('DELETE', `/v2/images/${id}`, { as: bob })).status, 204);
});
