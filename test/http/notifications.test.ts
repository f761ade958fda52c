import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

test('with the log driver, image events are written as JSON lines with Glance event types', async (t) => {
  const lines: string[] = [];
  t.mock.method(console, 'log', (line: unknown) => { lines.push(String(line)); });
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } });
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'noticed' });
    await api.upload(img.id, 'bytes');
    await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/k', value: 'v' }]);
    await api.del(`/v2/images/${img.id}`);
  } finally {
    await gaze.stop();
  }
  const events = lines.map((l) => JSON.parse(l)).filter((n) => n.payload?.id);
  assert.deepEqual(events.map((n) => n.notification), ['image.create', 'image.prepare', 'image.upload', 'image.activate', 'image.update', 'image.delete']);
  const upload = events.find((n) => n.notification === 'image.upload');
  assert.equal(upload.payload.status, 'active');
  assert.equal(upload.payload.size, 5);
  assert.equal(events.at(-1).payload.deleted, true);
  assert.ok(!('locations' in upload.payload));
});
