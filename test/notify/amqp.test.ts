// The RabbitMQ driver's pure parts: transport_url as oslo.messaging writes it, and a broker that cannot be
// reached (nothing listens): sending returns at once, the queue is bounded and counts what it drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AmqpNotificationDriver, amqpUrls, tlsVersions, transportQuery } from '../../src/notify/amqp.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { freePort } from '../helpers/keystone.ts';

test('transport_url: hosts, credentials and the virtual host as amqp URLs', () => {
  assert.deepEqual(amqpUrls('rabbit://guest:guest@127.0.0.1:5672/'), ['amqp://guest:guest@127.0.0.1:5672']);
  assert.deepEqual(amqpUrls('rabbit://u:p@h1:5672,u:p@h2:5673/openstack'), ['amqp://u:p@h1:5672/openstack', 'amqp://u:p@h2:5673/openstack']);
  assert.deepEqual(amqpUrls('rabbit://u:p@h:5672'), ['amqp://u:p@h:5672']);
  assert.deepEqual(amqpUrls('rabbit://u:p@h:5672/%2F'), ['amqp://u:p@h:5672/%2F']);
  assert.throws(() => amqpUrls('http://example.com'), /is not rabbit:\/\//);
  assert.deepEqual(amqpUrls('rabbit://u:p@h1:5671,u:p@h2:5671/', true), ['amqps://u:p@h1:5671', 'amqps://u:p@h2:5671']);
  // A host without a port is 5672, with TLS too, as oslo.messaging reads it (amqplib would take 5671).
  assert.deepEqual(amqpUrls('rabbit://u:p@h1,u:p@[::1]/', true), ['amqps://u:p@h1:5672', 'amqps://u:p@[::1]:5672']);
  // The query is options, not part of the virtual host.
  assert.deepEqual(amqpUrls('rabbit://u:p@h:5671//glance?ssl=1&ssl_ca_file=/etc/ca.pem', true), ['amqps://u:p@h:5671/%2Fglance']);
  assert.deepEqual(amqpUrls('rabbit://u:p@h:5672/?ssl=0'), ['amqp://u:p@h:5672']);
  assert.deepEqual(transportQuery('rabbit://u:p@h:5671//glance?ssl=1&ssl_ca_file=%2Fetc%2Fca.pem'), { ssl: '1', ssl_ca_file: '/etc/ca.pem' });
  assert.deepEqual(transportQuery('rabbit://u:p@h:5671/'), {});
});

test("ssl_version: Python's protocol names as the TLS versions a connection may use", () => {
  assert.deepEqual(tlsVersions(''), {});
  assert.deepEqual(tlsVersions('SSLv23'), {});
  assert.deepEqual(tlsVersions('TLSv1_2'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  assert.deepEqual(tlsVersions('tlsv1_1'), { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' });
  assert.deepEqual(tlsVersions('TLSv1'), { minVersion: 'TLSv1', maxVersion: 'TLSv1' });
  assert.throws(() => tlsVersions('SSLv3'), /'SSLv3' is not one of/);
});

test('an unreachable broker: send returns at once, at most maxQueued wait, the oldest are dropped and counted', async () => {
  const port = await freePort();
  const driver = new AmqpNotificationDriver({
    urls: [`amqp://guest:guest@127.0.0.1:${port}`],
    exchange: 'glance',
    topics: ['notifications'],
    envelope: true,
    durable: false,
    maxQueued: 5,
    log: silentLogger(),
  });
  const started = performance.now();
  for (let i = 0; i < 8; i++) {
    driver.send({ event_type: 'image.create', priority: 'INFO', publisher_id: 'image.localhost', timestamp: new Date().toISOString(), payload: { i } });
  }
  assert.ok(performance.now() - started < 100, 'sending never waits for the broker');
  assert.equal(driver.depth, 5);
  assert.equal(driver.dropped, 3);
  await driver.close(200);
});
