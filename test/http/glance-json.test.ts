import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { glanceAsciiJson, glanceJson } from '../../src/http/glance-json.ts';
import { PYTHON3 } from '../helpers/cli.ts';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

// Glance writes its JSON with Python's json.dumps: a space after every separator, characters beyond
// ASCII as they are in its resources (ensure_ascii=False) and escaped in schemas, discovery and errors.
// Python itself is the oracle here: each text must be what json.dumps makes of the same value.

/** json.dumps of each JSON text (key order kept), with ensure_ascii as given. */
function pythonDumps(texts: string[], ensureAscii: boolean): string[] {
  const script = `import json, sys, collections
for line in sys.stdin.read().split('\\n\\x00\\n')[:-1]:
    value = json.loads(line, object_pairs_hook=collections.OrderedDict)
    sys.stdout.write(json.dumps(value, ensure_ascii=${ensureAscii ? 'True' : 'False'}) + '\\n\\x00\\n')`;
  const out = execFileSync(PYTHON3, ['-c', script], { input: texts.map((t) => `${t}\n\0\n`).join(''), encoding: 'utf8' });
  return out.split('\n\0\n').slice(0, -1);
}

const TRICKY: unknown[] = [
  {},
  [],
  { a: [], b: {}, c: [{}], d: null, e: true, f: false, g: -12, h: 2.5, i: 1e21 },
  { 'key, with: separators': 'value, with: "quotes" and \\backslashes\\', tail: '\\' },
  { names: ['café', '☃', '💥', 'ends with backslash \\', '"', '\\"', ',', ':', '{"nested": "json"}'] },
  { control: '\u0000\u0001\b\f\n\r\t\u001f\u007f\u2028', ümlaut: 'ü' },
  'a bare string, with: separators',
  [1, [2, [3, [4]]], { x: [{ y: 'z,:' }] }],
];

test("glanceJson and glanceAsciiJson write what Python's json.dumps writes", () => {
  const compact = TRICKY.map((v) => JSON.stringify(v));
  const unicode = pythonDumps(compact, false);
  const ascii = pythonDumps(compact, true);
  TRICKY.forEach((value, i) => {
    assert.equal(glanceJson(value), unicode[i], `ensure_ascii=False: ${compact[i]}`);
    assert.equal(glanceAsciiJson(value), ascii[i], `ensure_ascii=True: ${compact[i]}`);
  });
});

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({});
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

test('answers carry the bytes Glance would send: its separators, and non-ASCII escaped only where Glance escapes it', async () => {
  const img = await api.createImage({ name: 'café, "quoted": ☃', visibility: 'shared', os_note: 'a:b, c', tags: ['é', 'x,y'] });
  await api.post(`/v2/images/${img.id}/members`, { member: 'other-project' });
  const resources = [
    await api.get(`/v2/images/${img.id}`),
    await api.get('/v2/images?limit=5'),
    await api.get(`/v2/images/${img.id}/members`),
    await api.get(`/v2/images/${img.id}/tasks`),
    await api.get('/v2/metadefs/resource_types'),
  ];
  const generic = [
    await api.get('/v2/schemas/image'),
    await api.get('/v2/info/import'),
    await api.get('/versions'),
    await api.get('/v2/images/no-such-image', { headers: { accept: 'application/json' } }),
  ];
  for (const r of [...resources, ...generic]) assert.ok(r.status < 300 || r.status === 404, `${r.status} ${r.text}`);
  assert.ok(resources[0]!.text.includes('"name": "café, \\"quoted\\": ☃"'), resources[0]!.text);
  assert.deepEqual(
    resources.map((r) => r.text),
    pythonDumps(
      resources.map((r) => r.text),
      false,
    ),
  );
  const errorText = generic[3]!.text;
  assert.match(errorText, /^\{"message": "[^"]*", "code": "404 Not Found", "title": "Not Found"\}$/);
  assert.deepEqual(
    generic.map((r) => r.text),
    pythonDumps(
      generic.map((r) => r.text),
      true,
    ),
  );
  for (const r of [...resources, ...generic]) assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(r.text)));
});
