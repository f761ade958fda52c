import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { nodeGone, nodeName } from '../../src/util/process.ts';

const DEAD_PID = 4_194_305; // beyond the largest pid Linux gives out (2^22)

test('a node of this host is gone when its process is, or when the host has rebooted since', () => {
  const me = nodeName();
  const [host, pid, boot, namespace, random] = me.split(':');
  assert.equal(host, hostname());
  assert.equal(Number(pid), process.pid);
  assert.equal(namespace, /\d+/.exec(readlinkSync('/proc/self/ns/pid'))![0]);
  assert.equal(nodeGone(me), false);
  assert.equal(nodeGone(`${host}:${DEAD_PID}:${boot}:${namespace}:${random}`), true);
  assert.equal(nodeGone(`${host}:${process.pid}:another-boot:${namespace}:${random}`), true, 'the pid is a different process after a reboot');
  assert.equal(nodeGone(`${host}:${DEAD_PID}:${boot}:${random}`), true, "an older node's name, without a namespace");
  assert.equal(nodeGone(`${host}:${DEAD_PID}:${boot}:1234:${random}`), false, 'a pid of another namespace cannot be probed from here');
  assert.notEqual(nodeName(), me, 'two names of one process differ');
});

test('a node in another pid namespace of this host (a container sharing the host name) is not taken for gone', (t) => {
  // The other side of the test above, for real: this process, judged from a new pid namespace, where
  // its pid does not exist.
  const probe = `import { nodeGone } from ${JSON.stringify(new URL('../../src/util/process.ts', import.meta.url).pathname)};
    process.stdout.write(String(nodeGone(process.argv[1])));`;
  const run = spawnSync('unshare', ['--pid', '--fork', process.execPath, '--import', 'tsx', '--input-type=module', '-e', probe, nodeName()], {
    encoding: 'utf8',
    cwd: new URL('../..', import.meta.url).pathname,
  });
  if (run.status !== 0 && /Operation not permitted|unshare failed/.test(run.stderr)) return t.skip(`unshare --pid needs root: ${run.stderr.trim()}`);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'false');
});

test('a node of another host is never taken for gone from here; older names without a boot are judged by pid', () => {
  assert.equal(nodeGone(`elsewhere-${hostname()}:${DEAD_PID}:some-boot:x`), false);
  assert.equal(nodeGone(`${hostname()}:${DEAD_PID}:x`), true);
  assert.equal(nodeGone(`${hostname()}:${process.pid}:x`), false);
});
