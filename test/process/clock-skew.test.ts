import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { startFileServer, trickle } from '../helpers/file-server.ts';
import { until } from '../helpers/wait.ts';

// Two `gaze serve` processes on one database server, the second on a host whose clock runs a minute
// ahead (libfaketime, Debian's `faketime`). Both stamp times on the database server's clock, so the
// fast one sees the other's lease as live and leaves its import alone. SQLite has no server: processes
// that share its file share a host, and so a clock.

// Debian puts it under the architecture's library directory.
const LIBFAKETIME = readdirSync('/usr/lib')
  .map((dir) => path.join('/usr/lib', dir, 'faketime', 'libfaketime.so.1'))
  .find((file) => existsSync(file));
const TOTAL = 16 << 20;
const md5OfSevens = createHash('md5').update(Buffer.alloc(TOTAL, 7)).digest('hex'); // trickle() sends 7s

forEachEngine((engine) => {
  if (engine.name === 'sqlite') return;
  const processes: GazeProcess[] = [];
  const faked: number[] = [];
  after(async () => {
    for (const gaze of processes) await gaze.stop();
    // libfaketime keeps its clock in /dev/shm (a segment and a semaphore named by the pid), which a
    // process stopped by a signal leaves behind.
    for (const pid of faked) for (const name of [`faketime_shm_${pid}`, `sem.faketime_sem_${pid}`]) rmSync(path.join('/dev/shm', name), { force: true });
  });

  test('a process whose host clock runs a minute ahead stamps the database’s time and leaves a live lease alone', async () => {
    assert.ok(LIBFAKETIME, "libfaketime.so.1 is missing: install Debian's faketime (scripts/install-system-deps.sh)");
    const files = await startFileServer();
    try {
      // About 20 s of download: longer than a lease (10 s) and several recovery sweeps (every 5 s).
      let downloads = 0;
      files.routes.set('/image', (res: ServerResponse) => {
        downloads++;
        trickle(TOTAL, 80, 64 * 1024)(res);
      });
      const sections = {
        database: { connection: await engine.url() },
        import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(files.port) },
      };
      const onTime = await startGazeProcess(sections);
      processes.push(onTime);
      const ahead = await startGazeProcess(sections, { env: { LD_PRELOAD: LIBFAKETIME, FAKETIME: '+60s' } });
      processes.push(ahead);
      if (ahead.child.pid) faked.push(ahead.child.pid);
      assert.match(ahead.output(), /clock is 6\d\.\d s ahead of the database server's/, 'the fast process measured its offset');

      // Its records carry the database's time, not its own.
      const made = await client(ahead.url).createImage({ name: 'stamped', disk_format: 'raw', container_format: 'bare' });
      const drift = Math.abs(Date.parse(made.created_at) - Date.now());
      assert.ok(drift < 10_000, `created_at ${made.created_at} is ${drift} ms off the real time`);

      const api = client(onTime.url);
      const image = await api.createImage({ name: 'long-import', disk_format: 'raw', container_format: 'bare' });
      const started = await api.call('POST', `/v2/images/${image.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/image') } } });
      assert.equal(started.status, 202);
      const done = await until(
        async () => {
          const img = (await api.get(`/v2/images/${image.id}`)).json;
          return img.status === 'active' || !('os_glance_import_task' in img) ? img : undefined;
        },
        'the import to finish',
        90_000,
      );
      const [task] = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks;
      assert.equal(done.status, 'active', `task: ${task?.status} ${task?.message}`);
      assert.equal(done.checksum, md5OfSevens);
      assert.equal(downloads, 1, 'the fast process did not take the live task over (a second download)');
    } finally {
      await files.close();
    }
  });
});
