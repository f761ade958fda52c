// Glance's server socket options on a real `gaze serve`, read back from the kernel with ss (iproute2):
// [DEFAULT] backlog is the listen queue, tcp_keepidle the idle time before TCP keepalive probes on each
// client connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { startGazeProcess } from '../helpers/gaze.ts';

function ss(args: string[]): string {
  return execFileSync('ss', ['-H', ...args], { encoding: 'utf8' });
}

/** Seconds in ss's timer form: 1min16sec, 9min59sec, 58sec, 123ms. */
function seconds(timer: string): number {
  const m = /^(?:(\d+)min)?(?:(\d+)sec)?(?:(\d+)ms)?$/.exec(timer);
  assert.ok(m, timer);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0) + Number(m[3] ?? 0) / 1000;
}

async function keepaliveTimer(port: number): Promise<number> {
  const agent = new Agent({ keepAlive: true });
  try {
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/versions', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    // The client's connection stays open in the agent: the server's end of it carries the timer.
    const line = ss(['-tno', 'state', 'established', `sport = :${port}`]);
    const timer = /timer:\(keepalive,([^,]+),\d+\)/.exec(line);
    assert.ok(timer, `no keepalive timer on the server's end: ${line}`);
    return seconds(timer[1]!);
  } finally {
    agent.destroy();
  }
}

test('backlog and tcp_keepidle: the listen queue and the keepalive timer of a client connection', async () => {
  const gaze = await startGazeProcess({ DEFAULT: { backlog: '123', tcp_keepidle: '77' } });
  try {
    // A listening socket's Send-Q is its backlog.
    const [, , sendQ] = ss(['-ltn', `sport = :${gaze.port}`])
      .trim()
      .split(/\s+/);
    assert.equal(sendQ, '123');
    const left = await keepaliveTimer(gaze.port);
    assert.ok(left > 60 && left <= 77, `keepalive in ${left} s`);
  } finally {
    await gaze.stop();
  }
  // Glance's defaults: 4096 (as far as net.core.somaxconn lets) and 600 s.
  const defaults = await startGazeProcess();
  try {
    const [, , sendQ] = ss(['-ltn', `sport = :${defaults.port}`])
      .trim()
      .split(/\s+/);
    const somaxconn = Number(execFileSync('cat', ['/proc/sys/net/core/somaxconn'], { encoding: 'utf8' }));
    assert.equal(Number(sendQ), Math.min(4096, somaxconn));
    const left = await keepaliveTimer(defaults.port);
    assert.ok(left > 590 && left <= 600, `keepalive in ${left} s`);
  } finally {
    await defaults.stop();
  }
});
