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
import { certificateAuthority } from '../helpers/tls.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';

let rabbit: RunningRabbit;
let listener: Listener;
// A CA, the broker's certificate (tlsDir/cert.pem) and Gaze's client certificate, both signed by it.
const tlsDir = mkdtempSync(path.join(tmpdir(), 'gaze-rabbit-tls-'));
const authority = certificateAuthority();
const files = { ca: path.join(tlsDir, 'ca.pem'), cert: path.join(tlsDir, 'client.pem'), key: path.join(tlsDir, 'client.key') };

before(
  async () => {
    writeFileSync(files.ca, authority.ca);
    writeFileSync(path.join(tlsDir, 'cert.pem'), authority.server.cert);
    writeFileSync(path.join(tlsDir, 'key.pem'), authority.server.key);
    writeFileSync(files.cert, authority.client.cert);
    writeFileSync(files.key, authority.client.key);
    rabbit = await startRabbit({ tlsDir });
    listener = await listenForNotifications(rabbit.url);
  },
  { timeout: 240_000 },
);
after(async () => {
  await listener?.stop();
  await rabbit?.stop();
  rmSync(tlsDir, { recursive: true, force: true });
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

test("notifications sent before any consumer exists wait in the topic's queue, declared as oslo.messaging declares it", async () => {
  const topic = `early_${randomBytes(4).toString('hex')}`;
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'messagingv2', transport_url: rabbit.url, topics: topic } });
  let image: { id: string };
  try {
    image = await client(gaze.url).createImage({ name: 'before anyone listens' });
  } finally {
    await gaze.stop(); // sends what is queued before it closes
  }
  // Ceilometer starting later: its queue (`<topic>.info`) already holds what was sent.
  const late = await listenForNotifications(rabbit.url, { topic });
  try {
    await until(
      () => (late.received.some((n) => n.event_type === 'image.create' && n.payload.id === image.id) ? true : undefined),
      'image.create to arrive',
      30_000,
    );
  } finally {
    await late.stop();
  }
});

/** Log lines of a Gaze, as text. */
function capturedLog() {
  const lines: string[] = [];
  return { log: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }), text: () => lines.join('') };
}

/**
 * Starts a Gaze sending to the broker's TLS port (as `host`) with these [oslo_messaging_rabbit] options,
 * creates an image, and stops. `query` ends the transport_url (`?ssl=1&…`); `port` the plain one.
 */
async function imageCreatedOverTls(rabbitOptions: Record<string, string>, host = '127.0.0.1', opts: { query?: string; port?: string } = {}) {
  const port = opts.port ?? rabbit.tls!.split(':')[1];
  const captured = capturedLog();
  const gaze = await startGazeInProcess(
    {
      oslo_messaging_notifications: { driver: 'messagingv2', transport_url: `rabbit://guest:guest@${host}:${port}/${opts.query ?? ''}` },
      oslo_messaging_rabbit: { ssl: 'True', ...rabbitOptions },
    },
    { log: captured.log },
  );
  try {
    const image = await client(gaze.url).createImage({ name: 'over tls' });
    const arrived = await until(
      () => (eventsOf(image.id).includes('image.create') ? 'arrived' : /cannot reach the message broker/.test(captured.text()) ? 'refused' : undefined),
      'the notification to arrive or the broker to be refused',
      30_000,
    );
    return { arrived: arrived === 'arrived', log: captured.text() };
  } finally {
    await gaze.stop();
  }
}

test('[oslo_messaging_rabbit] ssl: notifications go over TLS with the CA file and a client certificate (key in its own file or in the same one)', async () => {
  assert.ok(rabbit.tls, 'the broker has a TLS listener');
  const both = path.join(tlsDir, 'both.pem');
  writeFileSync(both, authority.client.pem);
  const settings: Array<Record<string, string>> = [
    { ssl_ca_file: files.ca, ssl_cert_file: files.cert, ssl_key_file: files.key },
    { kombu_ssl_ca_certs: files.ca, ssl_cert_file: both, ssl_version: 'TLSv1_2' },
  ];
  for (const options of settings) {
    const sent = await imageCreatedOverTls(options);
    assert.equal(sent.arrived, true, sent.log);
  }
});

test('[oslo_messaging_rabbit] ssl: the chain is checked (system CAs without ssl_ca_file), the broker asks for the client certificate', async () => {
  const withoutCa = await imageCreatedOverTls({ ssl_cert_file: files.cert, ssl_key_file: files.key });
  assert.equal(withoutCa.arrived, false);
  assert.match(withoutCa.log, /self[- ]signed certificate|unable to get local issuer certificate/);
  const withoutClientCertificate = await imageCreatedOverTls({ ssl_ca_file: files.ca });
  assert.equal(withoutClientCertificate.arrived, false);
  assert.match(withoutClientCertificate.log, /certificate required|handshake failure/);
});

test("transport_url's query sets [oslo_messaging_rabbit] options as oslo.messaging reads it: ?ssl=1 and its files, ?ssl=0; a parameter that is no option stops start-up", async () => {
  const query = `?ssl=1&ssl_ca_file=${encodeURIComponent(files.ca)}&ssl_cert_file=${encodeURIComponent(files.cert)}&ssl_key_file=${encodeURIComponent(files.key)}`;
  const byQuery = await imageCreatedOverTls({ ssl: 'False' }, '127.0.0.1', { query });
  assert.equal(byQuery.arrived, true, byQuery.log);
  // ssl = True in the file, ?ssl=0 in the URL: plain AMQP, to the plain port.
  const plain = await imageCreatedOverTls({}, '127.0.0.1', { query: '?ssl=0', port: new URL(rabbit.url).port });
  assert.equal(plain.arrived, true, plain.log);
  await assert.rejects(
    imageCreatedOverTls({}, '127.0.0.1', { query: '?ssl=1&no_such_option=1' }),
    /transport_url.*its query parameter no_such_option is no option of \[oslo_messaging_rabbit\]/,
  );
});

test('[oslo_messaging_rabbit] ssl_version without ssl_ca_file checks no certificate, as oslo.messaging with py-amqp does, and says so at start', async () => {
  const sent = await imageCreatedOverTls({ ssl_version: 'TLSv1_2', ssl_cert_file: files.cert, ssl_key_file: files.key });
  assert.equal(sent.arrived, true, sent.log);
  assert.match(sent.log, /ssl_version without ssl_ca_file: the broker's certificate is not checked/);
});

test('broker TLS files are read for each connection: a CA file renewed after start is the one used', async () => {
  const renewed = path.join(tlsDir, 'renewed-ca.pem');
  writeFileSync(renewed, certificateAuthority().ca); // another CA's, at start
  const captured = capturedLog();
  const gaze = await startGazeInProcess(
    {
      oslo_messaging_notifications: { driver: 'messagingv2', transport_url: `rabbit://guest:guest@${rabbit.tls}/` },
      oslo_messaging_rabbit: { ssl: 'True', ssl_ca_file: renewed, ssl_cert_file: files.cert, ssl_key_file: files.key },
    },
    { log: captured.log },
  );
  try {
    writeFileSync(renewed, authority.ca); // the broker's, before the first connection
    const image = await client(gaze.url).createImage({ name: 'after renewal' });
    await until(() => (eventsOf(image.id).includes('image.create') ? true : undefined), 'the notification over the renewed CA', 30_000);
    assert.doesNotMatch(captured.text(), /cannot reach the message broker/);
  } finally {
    await gaze.stop();
  }
});

test("[oslo_messaging_rabbit] ssl_enforce_hostname_verification: the broker's name is checked only when asked, as oslo.messaging does", async () => {
  // The certificate names 127.0.0.1 only: reached as localhost, the chain holds and the name does not.
  const tls = { ssl_ca_file: files.ca, ssl_cert_file: files.cert, ssl_key_file: files.key };
  const unchecked = await imageCreatedOverTls(tls, 'localhost');
  assert.equal(unchecked.arrived, true, unchecked.log);
  const enforced = await imageCreatedOverTls({ ...tls, ssl_enforce_hostname_verification: 'True' }, 'localhost');
  assert.equal(enforced.arrived, false);
  assert.match(enforced.log, /does not match certificate's altnames/);
  await assert.rejects(imageCreatedOverTls({ ...tls, ssl_version: 'SSLv3' }), /ssl_version.*'SSLv3' is not one of/);
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

test('[oslo_messaging_rabbit] rabbit_quorum_queue: the topic queue is a durable quorum queue with the limits set, as oslo.messaging declares it', async () => {
  const topic = `quorum_${randomBytes(4).toString('hex')}`;
  const gaze = await startGazeInProcess({
    DEFAULT: { control_exchange: 'glance-quorum' },
    oslo_messaging_notifications: { driver: 'messagingv2', transport_url: rabbit.url, topics: topic },
    oslo_messaging_rabbit: { rabbit_quorum_queue: 'True', rabbit_quorum_delivery_limit: '5' },
  });
  try {
    await client(gaze.url).createImage({ name: 'into a quorum queue' });
  } finally {
    await gaze.stop(); // sends what is queued before it closes
  }
  const amqp = await import('amqplib');
  const connection = await amqp.connect(rabbit.url.replace(/^rabbit:/, 'amqp:'));
  try {
    // The same declaration is accepted (and finds what was sent waiting); any other is refused by the broker.
    const same = await (
      await connection.createChannel()
    ).assertQueue(`${topic}.info`, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 },
    });
    assert.ok(same.messageCount >= 1, `waiting: ${same.messageCount}`);
    const other = await connection.createChannel();
    other.on('error', () => {});
    await assert.rejects(other.assertQueue(`${topic}.info`, { durable: true, arguments: { 'x-queue-type': 'classic' } }), /PRECONDITION_FAILED/);
  } finally {
    await connection.close().catch(() => {});
  }
});
