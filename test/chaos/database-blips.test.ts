// The database fails for a moment while an upload or a stage runs (a PostgreSQL restart, a failover):
// whatever read or write fails after the image was claimed, the image goes back to `queued` (at once,
// or by the node's next retry pass), never left `saving` or `uploading` under a live node's name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import type { ImagesRepo } from '../../src/db/repos/images.ts';
import type { QuotaService } from '../../src/quota/quotas.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess();
  api = client(gaze.url);
});
after(() => gaze.stop());

const blip = () => new Error('Connection terminated unexpectedly (the database restarted)');
const statusOf = async (id: string) => (await gaze.app.db.kysely.selectFrom('images').select('status').where('id', '=', id).executeTakeFirst())?.status;

/** Runs `during` with the image repository's methods replaced as `patch` says, then puts them back. */
async function withRepo<T>(patch: (images: ImagesRepo, original: ImagesRepo) => void, during: () => Promise<T>): Promise<T> {
  const images = gaze.app.deps.images;
  const original = Object.create(Object.getPrototypeOf(images) as object) as ImagesRepo;
  const saved = { get: images.get, updateFields: images.updateFields, activateWithData: images.activateWithData };
  Object.assign(original, images, {
    get: saved.get.bind(images),
    updateFields: saved.updateFields.bind(images),
    activateWithData: saved.activateWithData.bind(images),
  });
  patch(images, original);
  try {
    return await during();
  } finally {
    Object.assign(images, saved);
  }
}

/** The image reads of `id` fail once, starting with the first read after the image turned `to`. */
function failReadAfterClaim(id: string, to: string) {
  return (images: ImagesRepo, original: ImagesRepo) => {
    let armed = false;
    images.updateFields = async (...args: Parameters<ImagesRepo['updateFields']>) => {
      const done = await original.updateFields(...args);
      if (args[0] === id && args[2]?.status === to && done) armed = true;
      return done;
    };
    images.get = async (imageId: string) => {
      if (imageId === id && armed) {
        armed = false;
        throw blip();
      }
      return original.get(imageId);
    };
  };
}

test('an upload whose first read after the claim fails puts the image back to queued; a new upload then works', async () => {
  const { id } = await api.createImage({ name: 'blip after the claim' });
  const answer = await withRepo(failReadAfterClaim(id, 'saving'), () => api.upload(id, 'hello'));
  assert.equal(answer.status, 500);
  assert.equal(await statusOf(id), 'queued');
  assert.equal((await api.upload(id, 'again')).status, 204);
  assert.equal((await api.get(`/v2/images/${id}`)).json.size, 5);
});

test("an upload whose activation fails, and then the read that asks whether the image was deleted: queued by the node's retry pass", async () => {
  const { id } = await api.createImage({ name: 'blip at activation' });
  const answer = await withRepo(
    (images, original) => {
      let readFails = false;
      images.activateWithData = async () => {
        readFails = true;
        throw blip();
      };
      images.get = async (imageId: string) => {
        if (imageId === id && readFails) {
          readFails = false;
          throw blip();
        }
        return original.get(imageId);
      };
    },
    () => api.upload(id, 'hello'),
  );
  assert.equal(answer.status, 500);
  await gaze.app.recoverAbandonedUploads();
  assert.equal(await statusOf(id), 'queued');
  assert.equal((await api.upload(id, 'again')).status, 204);
});

test('a stage whose size cannot be saved, and then the read that asks whether the image was deleted: back to queued, and it can be staged again', async () => {
  const { id } = await api.createImage({ name: 'stage blip' });
  const stage = (body: string) => api.put(`/v2/images/${id}/stage`, { body, headers: { 'content-type': 'application/octet-stream' } });
  // The staged size is written with its hold against the quotas.
  const { quotas } = gaze.app.deps;
  const hold = quotas.hold;
  let readFails = false;
  quotas.hold = async (...args: Parameters<QuotaService['hold']>) => {
    if (args[1] === id && 'size' in args[3] && args[3].size === 5) {
      readFails = true;
      throw blip();
    }
    return hold.apply(quotas, args);
  };
  const answer = await withRepo(
    (images, original) => {
      images.get = async (imageId: string) => {
        if (imageId === id && readFails) {
          readFails = false;
          throw blip();
        }
        return original.get(imageId);
      };
    },
    () => stage('hello'),
  ).finally(() => (quotas.hold = hold));
  assert.equal(answer.status, 500);
  assert.equal(await statusOf(id), 'queued');
  assert.equal((await stage('again')).status, 204);
  assert.equal(await statusOf(id), 'uploading');
});
