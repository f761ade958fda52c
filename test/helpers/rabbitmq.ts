// Starts a real, throw-away RabbitMQ for a test file (scripts/start-rabbitmq.sh) in a temp dir on loopback
// ports, and an oslo.messaging notification listener (scripts/notification_listener.py, Debian's
// python3-oslo.messaging) that prints what it receives.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { runScript } from './scripts.ts';
import { PYTHON3 } from './cli.ts';

export interface RunningRabbit {
  /** rabbit://guest:guest@127.0.0.1:PORT/ */
  url: string;
  /** With tlsDir: host:port of AMQP over TLS (which asks for a client certificate signed by the CA). */
  tls?: string;
  dir: string;
  stop(): Promise<void>;
}

/** Whether `port` on loopback can be listened on now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive free ports, below the kernel's range of ephemeral ports (32768 and
 * up): a port picked there (listen on 0) leaves its neighbours to any client connection of the
 * running tests, which could take Erlang's port mapper's port before RabbitMQ does.
 */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let free = true;
    for (let i = 0; i < count && free; i++) free = await portFree(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found between 20000 and 32000`);
}

/** tlsDir: ca.pem, cert.pem and key.pem for a TLS listener beside the plain one. */
export async function startRabbit(opts: { tlsDir?: string } = {}): Promise<RunningRabbit> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-rabbitmq-'));
  const onExit = () => {
    try {
      process.kill(Number(readFileSync(path.join(dir, 'server.pid'), 'utf8').trim()), 'SIGTERM');
    } catch {
      /* not running */
    }
  };
  process.once('exit', onExit);
  // The script uses PORT, PORT+1 (Erlang's port mapper), PORT+2 (distribution) and PORT+3 (TLS).
  const port = await freePortRun(opts.tlsDir ? 4 : 3);
  try {
    const out = await runScript('start-rabbitmq.sh', [dir, String(port), ...(opts.tlsDir ? [opts.tlsDir] : [])], 180_000);
    const ready = /^READY (\S+)$/m.exec(out);
    if (!ready) throw new Error(`start-rabbitmq.sh did not print READY:\n${out}`);
    return {
      url: ready[1]!,
      tls: /^READY_TLS (\S+)$/m.exec(out)?.[1],
      dir,
      async stop() {
        await runScript('stop-rabbitmq.sh', [dir, '--remove'], 60_000).catch(() => {});
        process.removeListener('exit', onExit);
      },
    };
  } catch (err) {
    await runScript('stop-rabbitmq.sh', [dir, '--remove'], 60_000).catch(() => {});
    process.removeListener('exit', onExit);
    throw err;
  }
}

export interface ReceivedNotification {
  priority: string;
  publisher_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  metadata: { message_id: string; timestamp: string };
}

export interface Listener {
  received: ReceivedNotification[];
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL('../../scripts/notification_listener.py', import.meta.url));

/** An oslo.messaging notification listener on `url`; resolves once its queues exist. */
export async function listenForNotifications(url: string, opts: { exchange?: string; topic?: string; durable?: boolean } = {}): Promise<Listener> {
  const args = [script, url, opts.exchange ?? 'glance', opts.topic ?? 'notifications', ...(opts.durable ? ['durable'] : [])];
  const child: ChildProcess = spawn(PYTHON3, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const received: ReceivedNotification[] = [];
  let errors = '';
  child.stderr!.on('data', (d) => (errors += d));
  let pending = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the listener did not start:\n${errors}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`the listener exited (${code}):\n${errors}`)));
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'LISTENING') {
          clearTimeout(timer);
          resolve();
        } else if (line.trim()) received.push(JSON.parse(line) as ReceivedNotification);
      }
    });
  });
  return {
    received,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
