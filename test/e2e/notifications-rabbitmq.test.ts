// Notifications on a real RabbitMQ in oslo.messaging's wire format, received and decoded by a real
// oslo.messaging listener (Debian's python3-oslo.messaging), as Ceilometer would; and a broker that is
// away never blocks or fails the API: notifications wait and are delivered once it is back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';
import { listenForNotifications, startRabbit, type Listener, type RunningRabbit } from '../helpers/rabbitmq.ts';
import { runScript } from '../helpers/scripts.ts';

let rabbit: RunningRabbit;
let listener: Listener;

before(
  async () => {
    rabbit = await startRabbit();
    listener = await listenForNotifications(rabbit.url);
  },
  { timeout: 240_000 },
);
after(async () => {
  await listener?.stop();
  await rabbit?.stop();
});

const eventsOf = (id: string) => listener.received.filter((n) => n.payload.id === id || n.payload.image_id === id).map((n) => n.event_type);

test("messagingv2: image and task events reach an oslo.messaging listener with Glance's publisher, priority and payloads", async () => {
  const gaze = await startGazeInProcess({
    oslo_messaging_notifications: { driver: 'messagingv2', transport_url: rabbit.url },
    DEFAULT: { default_publisher_id: 'image.node-1' },
  });
  try {
    const api = client(gaze.url);
    const data = randomBytes(100_000);
    const uploaded = await api.createImage({ name: 'notified' });
    assert.equal((await api.upload(uploaded.id, data)).status, 204);
    const imported = await api.createImage({ name: 'imported' });
    assert.equal((await api.put(`/v2/images/${imported.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.post(`/v2/images/${imported.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    await until(async () => ((await api.get(`/v2/images/${imported.id}`)).json.status === 'active' ? true : undefined), 'the import');
    assert.equal((await api.del(`/v2/images/${uploaded.id}`)).status, 204);

    await until(() => (eventsOf(uploaded.id).includes('image.delete') ? true : undefined), 'image.delete to arrive', 30_000);
    for (const event of ['image.create', 'image.prepare', 'image.upload', 'image.activate', 'image.delete']) {
      assert.ok(eventsOf(uploaded.id).includes(event), `${event} arrived: ${eventsOf(uploaded.id).join(', ')}`);
    }
    await until(() => (listener.received.some((n) => n.event_type === 'task.success') ? true : undefined), 'task.success', 30_000);
    for (const event of ['task.create', 'task.processing', 'task.success']) {
      assert.ok(
        listener.received.some((n) => n.event_type === event),
        `${event} arrived`,
      );
    }
    assert.ok(eventsOf(imported.id).includes('image.activate'));
    const created = listener.received.find((n) => n.event_type === 'image.create' && n.payload.id === uploaded.id)!;
    assert.equal(created.priority, 'INFO');
    assert.equal(created.publisher_id, 'image.node-1');
    assert.equal(created.payload.name, 'notified');
    assert.match(created.metadata.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
    assert.match(created.metadata.message_id, /^[0-9a-f-]{36}$/);
  } finally {
    await gaze.stop();
  }
});

test('a broker that is away: API calls answer at once, notifications wait in memory and arrive once it is back', async () => {
  // Durable exchange and queues (amqp_durable_queues on both sides) outlive the broker's restart, so
  // what Gaze sends once the broker is back is kept until the listener has reconnected.
  // Queues are named <topic>.<priority>: another topic keeps them apart from the first test's.
  const durable = await listenForNotifications(rabbit.url, { exchange: 'glance-durable', topic: 'durable', durable: true });
  const gaze = await startGazeInProcess({
    DEFAULT: { control_exchange: 'glance-durable' },
    oslo_messaging_notifications: { driver: 'messagingv2', transport_url: rabbit.url, topics: 'durable' },
    oslo_messaging_rabbit: { amqp_durable_queues: 'True' },
  });
  try {
    const api = client(gaze.url);
    await runScript('stop-rabbitmq.sh', [rabbit.dir], 60_000);
    const started = Date.now();
    const image = await api.createImage({ name: 'while-away' });
    assert.equal((await api.upload(image.id, randomBytes(1000))).status, 204);
    assert.ok(Date.now() - started < 5000, 'the API did not wait for the broker');
    assert.deepEqual(
      durable.received.filter((n) => n.payload.id === image.id),
      [],
    );

    const out = await runScript('start-rabbitmq.sh', [rabbit.dir, new URL(rabbit.url).port], 180_000);
    assert.match(out, /^READY /m);
    const arrived = () => durable.received.filter((n) => n.payload.id === image.id).map((n) => n.event_type);
    await until(() => (arrived().includes('image.activate') ? true : undefined), 'the queued notifications to arrive', 120_000);
    assert.equal(arrived().filter((e) => e === 'image.create').length, 1);
  } finally {
    await gaze.stop();
    await durable.stop();
  }
});
