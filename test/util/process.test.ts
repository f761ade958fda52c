import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { nodeGone, nodeName } from '../../src/util/process.ts';

const DEAD_PID = 4_194_305; // beyond the largest pid Linux gives out (2^22)

test('a node of this host is gone when its process is, or when the host has rebooted since', () => {
  const me = nodeName();
  const [host, pid, boot, random] = me.split(':');
  assert.equal(host, hostname());
  assert.equal(Number(pid), process.pid);
  assert.equal(nodeGone(me), false);
  assert.equal(nodeGone(`${host}:${DEAD_PID}:${boot}:${random}`), true);
  assert.equal(nodeGone(`${host}:${process.pid}:another-boot:${random}`), true, 'the pid is a different process after a reboot');
  assert.notEqual(nodeName(), me, 'two names of one process differ');
});

test('a node of another host is never taken for gone from here; older names without a boot are judged by pid', () => {
  assert.equal(nodeGone(`elsewhere-${hostname()}:${DEAD_PID}:some-boot:x`), false);
  assert.equal(nodeGone(`${hostname()}:${DEAD_PID}:x`), true);
  assert.equal(nodeGone(`${hostname()}:${process.pid}:x`), false);
});
