// A real HAProxy (Debian's haproxy) in front of Gaze nodes on loopback, configured as the README's
// "Deploying several nodes" shows: round robin, health checks on /healthcheck, failed connections
// redispatched to another node.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './keystone.ts';
import { runScript } from './scripts.ts';
import { Agent, fetch as undiciFetch } from 'undici';

// Health checks through a TLS frontend whose certificate is a test's own.
const insecure = new Agent({ connect: { rejectUnauthorized: false } });

export const HEALTH_INTERVAL_MS = 500;
export const HEALTH_FALL = 2;

export function haproxyConfig(port: number, nodePorts: number[]): string {
  return `defaults
  mode http
  timeout connect 2s
  timeout client 300s
  timeout server 300s
  retries 3
  option redispatch

frontend image_api
  bind 127.0.0.1:${port}
  default_backend gaze

backend gaze
  balance roundrobin
  option httpchk GET /healthcheck
  http-check expect status 200
  default-server inter ${HEALTH_INTERVAL_MS} fall ${HEALTH_FALL} rise 2
${nodePorts.map((p, i) => `  server node${i + 1} 127.0.0.1:${p} check`).join('\n')}
`;
}

export interface RunningHaproxy {
  url: string;
  stop(): Promise<void>;
}

/** HAProxy over the nodes on `nodePorts`; resolves once it answers /healthcheck (on `port`, or a free one). */
export async function startHaproxy(nodePorts: number[], port?: number): Promise<RunningHaproxy> {
  const lbPort = port ?? (await freePort());
  return startHaproxyWith(haproxyConfig(lbPort, nodePorts), `http://127.0.0.1:${lbPort}`);
}

/**
 * HAProxy on a configuration of the caller's (its files, a certificate say, in `files`, written beside
 * it, `__DIR__` in the text naming their directory); resolves once `url` + `ready` answers 200.
 */
export async function startHaproxyWith(configText: string, url: string, files: Record<string, string> = {}, ready = '/healthcheck'): Promise<RunningHaproxy> {
  await runScript('apt-install.sh', ['haproxy'], 300_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-haproxy-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const config = path.join(dir, 'haproxy.cfg');
  writeFileSync(config, configText.replaceAll('__DIR__', dir));
  const child: ChildProcess = spawn('haproxy', ['-f', config, '-db'], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await undiciFetch(`${url}${ready}`, { dispatcher: insecure }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`HAProxy did not answer ${ready} within 30 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, stop };
}
