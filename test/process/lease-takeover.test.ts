import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import { openDatabase } from '../../src/db/connection.ts';
import { ImagesRepo } from '../../src/db/repos/images.ts';
import { TasksRepo } from '../../src/db/repos/tasks.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { moveTo } from '../../src/domain/image.ts';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { startFileServer, trickle } from '../helpers/file-server.ts';
import { until } from '../helpers/wait.ts';
import { taskRow } from '../helpers/tasks.ts';

// Two `gaze serve` processes on one database. The one running an import is frozen (SIGSTOP: alive but
// silent, as in a long pause) past its lease; the other takes the task over once the lease has expired
// and finishes it. The frozen one, woken while its successor still works, must step aside without
// failing or reverting anything. Then the attempt limit: a task interrupted too often fails cleanly.

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOTAL = 24 << 20;
const md5OfSevens = createHash('md5').update(Buffer.alloc(TOTAL, 7)).digest('hex'); // trickle() sends 7s

forEachEngine((engine) => {
  const processes: GazeProcess[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const gaze of processes) {
      gaze.child.kill('SIGCONT');
      await gaze.stop();
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('a process paused past its lease loses the task to another, which finishes it; woken, it steps aside', async () => {
    const files = await startFileServer();
    try {
      // The first download trickles (the frozen process never finishes it); the successor's is faster
      // but still lasts a few seconds, so that the first process wakes up while the successor works.
      const requests: string[] = [];
      files.routes.set('/image', (res: ServerResponse) => {
        requests.push(new Date().toISOString());
        (requests.length === 1 ? trickle(TOTAL, 20, 64 * 1024) : trickle(TOTAL, 20, 160 * 1024))(res);
      });
      const sections = {
        database: { connection: await engine.url() },
        import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(files.port) },
      };
      const start = async () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'gaze-lease-'));
        dirs.push(dir);
        const gaze = await startGazeProcess(sections, { dir });
        processes.push(gaze);
        return gaze;
      };
      const first = await start();
      const second = await start();
      // A failure says what both processes logged (the takeover is timing-dependent under load).
      const withLogs = (err: Error) =>
        Object.assign(err, {
          message: `${err.message}\ndownloads started: ${requests.join(', ')}\n--- first process ---\n${first.output()}\n--- second process ---\n${second.output()}`,
        });
      try {
        const api = client(first.url);

        const image = await api.createImage({ name: 'taken-over', disk_format: 'raw', container_format: 'bare' });
        assert.equal(
          (await api.call('POST', `/v2/images/${image.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/image') } } })).status,
          202,
        );
        // Frozen once its download runs (before that, there would be nothing of its own to step away from).
        await until(() => (requests.length >= 1 ? true : undefined), 'the first process to start downloading');
        await until(async () => ((await api.get(`/v2/images/${image.id}`)).json.status === 'importing' ? true : undefined), 'importing');
        first.child.kill('SIGSTOP');

        // The lease (10 s) expires, the second process's recovery sweep claims the task and downloads again.
        await until(() => (requests.length >= 2 ? true : undefined), 'the second process to take the task over', 40_000);
        first.child.kill('SIGCONT');
        const secondApi = client(second.url);
        const done = await until(async () => {
          const img = (await secondApi.get(`/v2/images/${image.id}`)).json;
          return img.status === 'active' || !('os_glance_import_task' in img) ? img : undefined;
        }, 'the import to finish');
        assert.equal(done.status, 'active', 'the woken process did not revert the import');
        assert.equal(done.size, TOTAL);
        assert.equal(done.checksum, md5OfSevens);
        // The task is finished just after the image turns active (two writes, as in Glance): wait for it.
        const task = await until(
          async () => {
            const [latest] = (await secondApi.get(`/v2/images/${image.id}/tasks`)).json.tasks;
            return ['success', 'failure'].includes(latest.status) ? latest : undefined;
          },
          'the task to finish',
          15_000,
        );
        assert.equal(task.status, 'success', `task: ${task.message}`);
        // The first process heard of the takeover (its heartbeat runs every 2 s) and kept out of it.
        await sleep(3000);
        const later = (await api.get(`/v2/images/${image.id}`)).json;
        assert.equal(later.status, 'active');
        assert.equal((await api.get(`/v2/images/${image.id}/tasks`)).json.tasks[0].status, 'success');
        assert.equal(requests.length, 2, 'nobody downloaded a third time');
        // Only the successor's store holds the data; neither staging area keeps anything.
        assert.deepEqual(filesIn(path.join(second.dir, 'data', 'images')), [image.id]);
        assert.deepEqual(filesIn(path.join(first.dir, 'data', 'images')), []);
        await until(() => (filesIn(path.join(first.dir, 'data', 'staging')).length === 0 ? true : undefined), 'the first staging area to be swept', 15_000);
        assert.deepEqual(filesIn(path.join(second.dir, 'data', 'staging')), []);
      } catch (err) {
        throw withLogs(err as Error);
      }
    } finally {
      await files.close();
    }
  });

  test('a task interrupted too many times fails cleanly: the image is queued again, nothing staged is kept', async () => {
    const url = await engine.url();
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-lease-'));
    dirs.push(dir);
    const gaze = await startGazeProcess({ database: { connection: url } }, { dir });
    processes.push(gaze);
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'interrupted-thrice' });
    assert.equal(
      (await api.put(`/v2/images/${image.id}/stage`, { body: Buffer.alloc(4096, 1), headers: { 'content-type': 'application/octet-stream' } })).status,
      204,
    );

    // What three holders that each died mid-import leave behind: the task processing with an expired
    // lease held by a process elsewhere, three attempts made, the image importing under its lock.
    const db = openDatabase(url);
    try {
      const taskId = randomUUID();
      const now = nowTimestamp();
      await new TasksRepo(db).insert(
        taskRow({
          id: taskId,
          status: 'processing',
          owner: image.owner,
          input: JSON.stringify({ image_id: image.id, import_req: { method: { name: 'glance-direct' } }, backend: [null] }),
          image_id: image.id,
          lease_owner: 'elsewhere:1:gone',
          lease_expires_at: addSeconds(now, -60),
          attempts: 3,
        }),
      );

      const images = new ImagesRepo(db);
      assert.equal(await images.takeImportLock(image.id, taskId), true);
      assert.equal(await images.updateFields(image.id, 'uploading', moveTo('importing')), true);

      const settled = await until(
        async () => {
          const img = (await api.get(`/v2/images/${image.id}`)).json;
          return img.status === 'queued' && !('os_glance_import_task' in img) ? img : undefined;
        },
        'the recovery sweep to give up',
        20_000,
      );
      assert.equal(settled.size, null);
      const task = (await api.get(`/v2/tasks/${taskId}`)).json;
      assert.equal(task.status, 'failure');
      assert.equal(task.message, 'Import was interrupted too many times (service restarts); giving up.');
      assert.deepEqual(filesIn(path.join(dir, 'data', 'staging')), []);
      assert.deepEqual(filesIn(path.join(dir, 'data', 'images')), []);
    } finally {
      await db.close();
    }
  });
});
