import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runGaze, startGazeProcess } from '../helpers/gaze.ts';
import { client, stalledUpload } from '../helpers/http.ts';

const run = promisify(execFile);
const gazeBin = fileURLToPath(new URL('../../bin/gaze.js', import.meta.url));

test('kill -9 during an upload: after a restart the image is queued again and no partial data remains', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-restart-'));
  try {
    const first = await startGazeProcess({}, { dir });
    const api = client(first.url);
    const img = await api.createImage({ name: 'interrupted' });
    const req = await stalledUpload(first.url, img.id, 2_000_000);
    await first.kill('SIGKILL');
    req.destroy();
    assert.ok(
      readdirSync(path.join(dir, 'data', 'images')).some((f) => f.startsWith('.partial-')),
      'the crash left a partial file',
    );

    const second = await startGazeProcess({}, { dir, port: first.port });
    try {
      const shown = (await client(second.url).get(`/v2/images/${img.id}`)).json;
      assert.equal(shown.status, 'queued');
      assert.equal(shown.size, null);
      assert.deepEqual(readdirSync(path.join(dir, 'data', 'images')), [], 'partial data was swept at start');
      assert.equal((await client(second.url).upload(img.id, 'complete')).status, 204);
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gaze db sync creates the schema once; no-auth mode refuses a non-loopback address', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-cli-'));
  try {
    const conf = path.join(dir, 'gaze.conf');
    writeFileSync(conf, `[DEFAULT]\ndata_dir = ${path.join(dir, 'data')}\nbind_host = 0.0.0.0\n`);
    const firstSync = await run(process.execPath, [gazeBin, 'db', 'sync', '--config', conf]);
    assert.match(firstSync.stdout, /applied 0001_initial/);
    const again = await run(process.execPath, [gazeBin, 'db', 'sync'], { env: { ...process.env, GAZE_CONFIG: conf } });
    assert.match(again.stdout, /up to date/);
    // A configuration it refuses, with the one line naming the option (exit code 2), as `config check` says.
    for (const command of [['serve'], ['config', 'check']]) {
      await assert.rejects(
        run(process.execPath, [gazeBin, ...command, '--config', conf]),
        (err: any) => err.code === 2 && /gaze\.conf:3: \[DEFAULT\] bind_host: refusing to serve without authentication on 0\.0\.0\.0/.test(err.stderr),
      );
    }
    // Bad usage exits 2, as glance-manage's.
    await assert.rejects(run(process.execPath, [gazeBin, 'frobnicate']), (err: any) => err.code === 2 && /unknown command 'frobnicate'/.test(err.stderr));
    await assert.rejects(run(process.execPath, [gazeBin, 'db']), (err: any) => err.code === 2 && /db needs a command: sync/.test(err.stderr));
    await assert.rejects(
      run(process.execPath, [gazeBin, 'db', 'sync', '--frobnicate']),
      (err: any) => err.code === 2 && /Unknown option '--frobnicate'/.test(err.stderr),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commands other than db sync and serve never create or upgrade a database: a missing one is named, with what to run', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-cli-'));
  try {
    const conf = path.join(dir, 'gaze.conf');
    const typo = path.join(dir, 'typo.db');
    writeFileSync(conf, `[database]\nconnection = sqlite:///${typo}\n[DEFAULT]\nimage_cache_dir = ${path.join(dir, 'cache')}\n`);
    for (const command of [
      ['db', 'unload-metadefs'],
      ['db', 'load-metadefs', dir],
      ['db', 'export-metadefs', path.join(dir, 'out')],
      ['scrub'],
      ['cache', 'list'],
    ]) {
      await assert.rejects(
        run(process.execPath, [gazeBin, ...command, '--config', conf]),
        (err: any) => err.code === 1 && err.stderr.includes(`the database file ${typo} does not exist: run \`gaze db sync\` first`),
        command.join(' '),
      );
    }
    assert.deepEqual(readdirSync(dir).sort(), ['gaze.conf'], 'no database file, no directory was made');
    await run(process.execPath, [gazeBin, 'db', 'sync', '--config', conf]);
    const unloaded = await run(process.execPath, [gazeBin, 'db', 'unload-metadefs', '--config', conf]);
    assert.match(unloaded.stdout, /every metadata definition was removed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('workers = 2 serves from two processes that share one database', async () => {
  const gaze = await startGazeProcess({ DEFAULT: { workers: '2' } });
  try {
    const api = client(gaze.url);
    const created = await Promise.all(Array.from({ length: 6 }, (_, i) => api.createImage({ name: `w${i}` })));
    await api.upload(created[0].id, 'across workers');
    const listed = (await api.get('/v2/images')).json.images.map((i: any) => i.name).sort();
    assert.deepEqual(listed, ['w0', 'w1', 'w2', 'w3', 'w4', 'w5']);
    const res = await fetch(`${gaze.url}/v2/images/${created[0].id}/file`);
    assert.equal(await res.text(), 'across workers');
  } finally {
    await gaze.stop();
  }
});

/** The worker processes of a `workers = N` supervisor. */
function workersOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test(
  'workers = 2 with a configuration a worker refuses: the service stops with the one line and exit code 2, as one process does',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-workers-refused-'));
    try {
      const conf = path.join(dir, 'gaze.conf');
      writeFileSync(path.join(dir, 'broken-policy.yaml'), '"add_image": [\n');
      writeFileSync(conf, `[DEFAULT]\nworkers = 2\nbind_port = 0\ndata_dir = ${dir}/data\n[oslo_policy]\npolicy_file = ${dir}/broken-policy.yaml\n`);
      const started = Date.now();
      const { code, stderr, stdout } = await runGaze(['serve', '--config-file', conf], { cwd: dir });
      assert.equal(code, 2, stdout + stderr);
      assert.match(stdout + stderr, /broken-policy\.yaml/);
      assert.ok(Date.now() - started < 30_000, 'it stopped instead of starting workers for ever');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('workers = 2: SIGTERM while a killed worker waits to be started again stops the supervisor, and no worker is left', { timeout: 60_000 }, async () => {
  const gaze = await startGazeProcess({ DEFAULT: { workers: '2' } });
  const supervisor = gaze.child.pid!;
  const [first, second] = workersOf(supervisor);
  assert.ok(first && second, 'two workers');
  process.kill(first, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  const stopping = gaze.kill('SIGTERM');
  const ended = await Promise.race([stopping.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
  if (!ended) process.kill(supervisor, 'SIGKILL');
  await gaze.stop(); // its directory goes
  assert.ok(ended, `the supervisor stopped:\n${gaze.output()}`);
  assert.equal(alive(second), false, 'its other worker stopped too');
});
