import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { runGaze, startGazeInProcess, startGazeProcess } from '../helpers/gaze.ts';
import { client, JSON_ACCEPT } from '../helpers/http.ts';
import { keystoneAuthSections } from '../helpers/keystone.ts';
import { startFileServer } from '../helpers/file-server.ts';
import { createLogger, logDestination } from '../../src/util/logger.ts';

// One structured logger: a line per answered request carrying the OpenStack request id, background
// work logged with what it concerns, and oslo.log's options deciding level and destination.

type Line = Record<string, any>;
const capture = (lines: Line[]) =>
  pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        lines.push(JSON.parse(line));
      },
    },
  );

test('every answered request logs one line with its request id, method, URL, status, caller, client address and size', async () => {
  const lines: Line[] = [];
  const gaze = await startGazeInProcess({}, { log: capture(lines) });
  try {
    const api = client(gaze.url);
    const given = await api.get('/v2/images', {
      headers: { 'x-openstack-request-id': 'req-4b1f4c0e-1111-2222-3333-444455556666' },
      as: { project: 'the-project', user: 'the-user', roles: 'member,reader' },
    });
    assert.equal(given.headers.get('x-openstack-request-id'), 'req-4b1f4c0e-1111-2222-3333-444455556666');
    const missing = await api.get('/v2/images/00000000-0000-4000-8000-000000000000');
    assert.equal(missing.status, 404);
    const made = missing.headers.get('x-openstack-request-id')!;
    assert.match(made, /^req-[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 50)); // onResponse runs after the answer is sent
    const completed = lines.filter((l) => l.msg === 'request completed');
    const first = completed.find((l) => l.reqId === 'req-4b1f4c0e-1111-2222-3333-444455556666');
    assert.deepEqual(
      { method: first?.method, url: first?.url, status: first?.status, level: first?.level },
      { method: 'GET', url: '/v2/images', status: 200, level: 30 },
    );
    assert.deepEqual(
      { user: first?.user, project: first?.project, remote: first?.remote, bytes: first?.bytes },
      { user: 'the-user', project: 'the-project', remote: '127.0.0.1', bytes: Buffer.byteLength(given.text) },
    );
    const second = completed.find((l) => l.reqId === made);
    assert.equal(second?.status, 404);
    assert.equal(typeof second?.ms, 'number');
  } finally {
    await gaze.stop();
  }
});

test('an answer the router gives itself (a URL it cannot decode, a path too long) logs its line too, with the id it answered with', async () => {
  const lines: Line[] = [];
  const gaze = await startGazeInProcess({}, { log: capture(lines) });
  try {
    const undecodable = await fetch(`${gaze.url}/v2/images/%ff`);
    const tooLong = await fetch(`${gaze.url}/v2/images/${'a'.repeat(10_000)}`);
    assert.deepEqual([undecodable.status, tooLong.status], [400, 414]);
    await new Promise((r) => setTimeout(r, 50));
    for (const [res, url] of [
      [undecodable, '/v2/images/%ff'],
      [tooLong, `/v2/images/${'a'.repeat(10_000)}`],
    ] as const) {
      const line = lines.find((l) => l.reqId === res.headers.get('x-openstack-request-id'));
      assert.deepEqual(
        { msg: line?.msg, method: line?.method, url: line?.url, status: line?.status, remote: line?.remote },
        { msg: 'request completed', method: 'GET', url, status: res.status, remote: '127.0.0.1' },
      );
    }
  } finally {
    await gaze.stop();
  }
});

test('a failed import task logs one warning with its task, its image and the reason the task gives', async () => {
  const lines: Line[] = [];
  // A source that answers 404: the import is accepted, then its task fails.
  const source = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const port = (source.address() as AddressInfo).port;
  const gaze = await startGazeInProcess(
    { DEFAULT: { enabled_import_methods: 'web-download' }, import_filtering_opts: { allowed_hosts: '127.0.0.0/8', allowed_ports: String(port) } },
    { log: capture(lines) },
  );
  try {
    const api = client(gaze.url);
    const image = await api.createImage();
    const started = await api.call('POST', `/v2/images/${image.id}/import`, {
      json: { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/missing.raw` } },
    });
    assert.equal(started.status, 202, started.text);
    let task: Record<string, any> | undefined;
    for (let i = 0; i < 200 && task?.status !== 'failure'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      task = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks[0];
    }
    assert.equal(task?.status, 'failure', JSON.stringify(task));
    const logged = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('import task failed'));
    assert.equal(logged.length, 1, JSON.stringify(lines.slice(-5)));
    assert.deepEqual(
      { task: logged[0]!.task, image: logged[0]!.image, level: logged[0]!.level, msg: logged[0]!.msg },
      { task: task!.id, image: image.id, level: 40, msg: `import task failed: ${task!.message}` },
    );
    assert.match(task!.message, /404/);
  } finally {
    await gaze.stop();
    source.close();
  }
});

test("Keystone unavailable: the caller gets a 503 that names no address nor service user; the cause is logged with the request's id", async () => {
  // A port nothing listens on: connection refused.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const keystoneUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
  const lines: Line[] = [];
  const gaze = await startGazeInProcess(keystoneAuthSections(keystoneUrl), { log: capture(lines) });
  try {
    const res = await fetch(`${gaze.url}/v2/images`, { headers: { 'X-Auth-Token': 'some-token', Accept: 'application/json' } });
    assert.equal(res.status, 503);
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), {
      code: '503 Service Unavailable',
      title: 'Service Unavailable',
      message: 'Keystone is unavailable: the token cannot be validated now; try again later.<br /><br />\n\n\n',
    });
    const reqId = res.headers.get('x-openstack-request-id');
    const logged = lines.find((l) => l.reqId === reqId && l.level === 40);
    assert.equal(logged?.msg, 'Keystone is unavailable: the token cannot be validated now; try again later.');
    assert.match(logged?.err?.message ?? '', new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${keystoneUrl.split(':')[2]}`));
  } finally {
    await gaze.stop();
  }
});

test("a location's password is never logged: not in a read that falls over, nor in a location refused, nor in the errors logged with them", async () => {
  const web = await startFileServer();
  const data = Buffer.alloc(5000, 3);
  web.routes.set('/flaky.img', data);
  web.routes.set('/good.img', data);
  const lines: Line[] = [];
  const gaze = await startGazeInProcess(
    {
      DEFAULT: { show_multiple_locations: 'True' },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
    },
    { log: capture(lines) },
  );
  try {
    const api = client(gaze.url);
    const secret = 'pa,ss;wo=rd';
    const withPassword = (file: string) => web.url(file).replace('http://', `http://webuser:${secret}@`);
    const add = (id: string, url: string) =>
      api.patch(`/v2/images/${id}`, [{ op: 'add', path: '/locations/-', value: { url, metadata: {} } }], { headers: JSON_ACCEPT });
    const image = await api.createImage({ name: 'secret-locations' });
    assert.equal((await add(image.id, withPassword('/flaky.img'))).status, 200);
    assert.equal((await add(image.id, withPassword('/good.img'))).status, 200);
    web.routes.delete('/flaky.img');
    const file = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), data);
    web.routes.set('/broken.img', (res) => res.writeHead(500).end());
    const refused = await add(image.id, withPassword('/broken.img'));
    assert.equal(refused.status, 400, refused.text);
    assert.ok(!refused.text.includes(secret), refused.text);
    await new Promise((r) => setTimeout(r, 50));
    const fellOver = lines.find((l) => /^cannot read .*flaky\.img; trying the next location$/.test(l.msg));
    assert.equal(fellOver?.msg, `cannot read ${web.url('/flaky.img').replace('http://', 'http://webuser:****@')}; trying the next location`);
    assert.match(fellOver?.err?.message ?? '', /^http:\/\/webuser:\*\*\*\*@127\.0\.0\.1:\d+\/flaky\.img: /);
    assert.ok(lines.some((l) => /^location http:\/\/webuser:\*\*\*\*@.*broken\.img of image .* refused/.test(l.msg)));
    const leaked = lines.filter((l) => JSON.stringify(l).includes('ss;wo'));
    assert.deepEqual(leaked, []);
  } finally {
    await gaze.stop();
    await web.close();
  }
});

test('log_file, log_dir, use_stderr and debug are read as oslo.log reads them', () => {
  assert.equal(logDestination({ debug: false, logFile: null, logDir: null, useStderr: false }), 1);
  assert.equal(logDestination({ debug: false, logFile: null, logDir: null, useStderr: true }), 2);
  assert.equal(logDestination({ debug: false, logFile: '/var/log/gaze/api.log', logDir: null, useStderr: true }), '/var/log/gaze/api.log');
  assert.equal(logDestination({ debug: false, logFile: 'api.log', logDir: '/var/log/gaze', useStderr: false }), '/var/log/gaze/api.log');
  assert.equal(logDestination({ debug: false, logFile: null, logDir: '/var/log/gaze', useStderr: false }), '/var/log/gaze/glance-api.log');
  assert.equal(createLogger({ debug: true, logFile: null, logDir: null, useStderr: true }).level, 'debug');
  assert.equal(createLogger({ debug: false, logFile: null, logDir: null, useStderr: true }).level, 'info');
});

test('a real gaze serve with log_file writes its start, its warnings and its requests there as JSON lines', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-log-'));
  const logFile = path.join(dir, 'logs', 'gaze-api.log');
  try {
    // use_stderr beside log_file: both, as oslo.log writes them.
    const gaze = await startGazeProcess({ DEFAULT: { log_file: logFile, use_stderr: 'true' }, oslo_concurrency: { lock_path: '/tmp' } }, { dir });
    const reply = await client(gaze.url).get('/v2/images', { headers: { 'x-openstack-request-id': 'req-from-the-test' } });
    assert.equal(reply.status, 200);
    await gaze.stop(); // SIGTERM: the log is flushed before the process exits
    assert.match(gaze.output(), /"reqId":"req-from-the-test"/, 'stderr has the lines too');
    assert.match(gaze.output(), /"msg":"SIGTERM: stopping"/);
    const lines = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    assert.ok(
      lines.some((l) => /^serving the Image API on http:\/\/127\.0\.0\.1:\d+\/ \(no auth\)$/.test(l.msg)),
      'the start line',
    );
    assert.ok(
      lines.some((l) => l.level === 40 && /\[oslo_concurrency\] lock_path is a Glance option Gaze does not implement/.test(l.msg)),
      'the warning',
    );
    assert.ok(
      lines.some((l) => l.reqId === 'req-from-the-test' && l.msg === 'request completed' && l.status === 200),
      'the request',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('debug = true logs every option at start, as Glance logs its configuration, credentials as ****', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-debug-'));
  const logFile = path.join(dir, 'gaze.log');
  try {
    const gaze = await startGazeProcess({ DEFAULT: { log_file: logFile, debug: 'true' }, keystone_authtoken: { password: 'sekrit-pw' } }, { dir });
    await gaze.stop();
    const text = readFileSync(logFile, 'utf8');
    const debug = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.level === 20)
      .map((l) => String(l.msg));
    assert.ok(
      debug.some((m) => /^\[DEFAULT\] debug = true \(.*gaze\.conf:\d+\)$/.test(m)),
      debug.slice(0, 5).join('\n'),
    );
    assert.ok(debug.includes('[keystone_authtoken] password = **** (' + debug.find((m) => m.startsWith('[keystone_authtoken] password'))!.split('(')[1]));
    assert.ok(debug.some((m) => m.startsWith('[DEFAULT] bind_port = ')));
    assert.doesNotMatch(text, /sekrit-pw/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a log file that cannot be written stops gaze serve at start with exit code 2 and the reason', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-log-'));
  try {
    const notADirectory = path.join(dir, 'a-file');
    writeFileSync(notADirectory, 'not a directory');
    const conf = path.join(dir, 'gaze.conf');
    writeFileSync(conf, `[DEFAULT]\nbind_port = 1\ndata_dir = ${path.join(dir, 'data')}\nlog_file = ${path.join(notADirectory, 'gaze.log')}\n`);
    const run = await runGaze(['serve', '--config', conf], { cwd: dir });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr.trim(), /^gaze: \[DEFAULT\] log_file: cannot write the log file .*a-file\/gaze\.log: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
