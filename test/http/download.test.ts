// Downloads of images larger than the file store's send chunks (4 MiB, reused across downloads): whole,
// ranges that start and end inside chunks, more downloads at once than there are pooled chunks, and
// clients that stop reading or hang up in the middle (the chunks they held must not corrupt others).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

const MiB = 1 << 20;
let gaze: RunningGaze;
let api: ReturnType<typeof client>;
const images: Array<{ id: string; data: Buffer }> = [];

before(async () => {
  gaze = await startGazeInProcess();
  api = client(gaze.url);
  // Different sizes, none a multiple of the chunk size; each image's bytes are its own.
  for (const size of [18 * MiB + 12345, 9 * MiB + 1, 4 * MiB - 1]) {
    const data = randomBytes(size);
    const image = await api.createImage({ name: `dl-${size}` });
    assert.equal((await api.upload(image.id, data)).status, 204);
    images.push({ id: image.id, data });
  }
});
after(async () => {
  await gaze.stop();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** GET /file read to the end, or cut after `stopAfter` bytes; optionally pausing the reader for a while. */
function download(
  id: string,
  opts: { range?: string; stopAfter?: number; pauseMs?: number } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gaze.url}/v2/images/${id}/file`, { agent: false, headers: opts.range ? { range: opts.range } : {} }, (res) => {
      const parts: Buffer[] = [];
      let got = 0;
      let paused = false;
      res.on('data', (chunk: Buffer) => {
        parts.push(chunk);
        got += chunk.length;
        if (opts.stopAfter !== undefined && got >= opts.stopAfter) {
          req.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), cut: true });
        } else if (opts.pauseMs && !paused && got >= MiB) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), opts.pauseMs);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), cut: false }));
      // The server cut the answer short (or we did): what arrived, marked as cut.
      res.on('error', () => {
        /* seen as the close below */
      });
      res.on('close', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), cut: true }));
    });
    req.on('error', (err) => {
      if (opts.stopAfter === undefined) reject(err);
    });
    req.end();
  });
}

test('a download larger than several send chunks returns every byte, with Content-Length and Content-MD5', async () => {
  for (const { id, data } of images) {
    const got = await download(id);
    assert.equal(got.status, 200);
    assert.equal(Number(got.headers['content-length']), data.length);
    assert.equal(got.headers['content-md5'], md5(data));
    assert.ok(got.body.equals(data), `image of ${data.length} bytes came back different`);
  }
});

test('ranges across chunk boundaries return exactly those bytes', async () => {
  const { id, data } = images[0];
  const cases: Array<[string, number, number]> = [
    [`bytes=${4 * MiB - 3}-${8 * MiB + 2}`, 4 * MiB - 3, 8 * MiB + 2],
    [`bytes=${data.length - 5 * MiB}-`, data.length - 5 * MiB, data.length - 1],
    ['bytes=-7', data.length - 7, data.length - 1],
    [`bytes=0-${data.length + 100}`, 0, data.length - 1],
  ];
  for (const [range, start, end] of cases) {
    const got = await download(id, { range });
    assert.equal(got.status, 206, range);
    assert.equal(got.headers['content-range'], `bytes ${start}-${end}/${data.length}`);
    assert.ok(got.body.equals(data.subarray(start, end + 1)), `${range}: wrong bytes`);
  }
});

test('more downloads at once than pooled chunks, with readers that pause and readers that hang up: each complete one is exact', async () => {
  const runs: Array<Promise<unknown>> = [];
  for (let i = 0; i < 12; i++) {
    const { id, data } = images[i % images.length];
    if (i % 4 === 3) {
      // Hangs up after a few MiB: its chunks go back to the pool while others use it.
      runs.push(download(id, { stopAfter: 2 * MiB + i }).then((got) => assert.ok(got.cut)));
    } else {
      runs.push(
        download(id, { pauseMs: i % 4 === 1 ? 300 : 0 }).then((got) => {
          assert.equal(got.status, 200);
          assert.ok(got.body.equals(data), `download ${i} of ${data.length} bytes came back different`);
        }),
      );
    }
  }
  await Promise.all(runs);
  // And afterwards the pool still hands out correct data.
  const { id, data } = images[1];
  assert.ok((await download(id)).body.equals(data));
});

test('an image whose file shrank under it ends the download early instead of hanging', async () => {
  const { truncateSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const image = await api.createImage({ name: 'shrinking' });
  const data = randomBytes(10 * MiB);
  assert.equal((await api.upload(image.id, data)).status, 204);
  const file = fileURLToPath(new URL(`file://${gaze.dir}/data/images/${image.id}`));
  // The size recorded is 10 MiB; the file now holds 5 MiB: the answer is cut short, never a hang.
  truncateSync(file, 5 * MiB);
  const got = await Promise.race([download(image.id), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the download hung')), 10_000))]);
  assert.ok(got.cut, 'the answer must not look complete');
  assert.ok(got.body.equals(data.subarray(0, got.body.length)) && got.body.length <= 5 * MiB, 'what arrived is the start of the image');
  // The service goes on serving.
  assert.ok((await download(images[2].id)).body.equals(images[2].data));
});
