// Starts a real, seeded Keystone for a test file (scripts/start-keystone.sh) in a temp dir on a free
// loopback port. Users: admin/admin-secret (project admin), gaze/gaze-secret (service, admin role),
// demo/demo-secret (demo, member), alt/alt-secret (alt, member), reader/reader-secret (demo, reader).
// Starting takes ~15-20 s (most of it keystone-manage and the seeding), so share one per test file.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runScript } from './scripts.ts';

export interface KeystoneOptions {
  /** Ports the image endpoints of RegionOne / RegionTwo name in the catalog (defaults 9292 / 9293). */
  regionOnePort?: number;
  regionTwoPort?: number;
  /** Seconds a token lives ([token] expiration; 3600 by default): short, to test expired tokens. */
  tokenExpiration?: number;
}

export interface RunningKeystone {
  /** Base URL without version, e.g. http://127.0.0.1:40123 (what [keystone_authtoken] auth_url takes). */
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
  /** A project-scoped token for a user of the default domain (POST /v3/auth/tokens). */
  token(user: string, password: string, project: string): Promise<string>;
  /** The same, with the ids of its user and project. */
  login(user: string, password: string, project: string): Promise<{ token: string; projectId: string; userId: string }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startKeystone(opts: KeystoneOptions = {}): Promise<RunningKeystone> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-keystone-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;

  // If the test process dies without calling stop(), do not leave a Keystone behind. Only the uwsgi
  // master whose PID this very start wrote is signalled.
  const onExit = () => {
    try {
      const pid = Number(readFileSync(path.join(dir, 'uwsgi.pid'), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      /* not running */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  try {
    const out = await runScript('start-keystone.sh', [dir, String(port)], 180_000, {
      GAZE_REGION_ONE_PORT: String(opts.regionOnePort ?? 9292),
      GAZE_REGION_TWO_PORT: String(opts.regionTwoPort ?? 9293),
      KEYSTONE_TOKEN_EXPIRATION: String(opts.tokenExpiration ?? 3600),
    });
    if (!/^READY$/m.test(out)) throw new Error(`start-keystone.sh did not print READY:\n${out}`);
  } catch (err) {
    await runScript('stop-keystone.sh', [dir, '--remove'], 30_000, {}).catch(() => {});
    process.removeListener('exit', onExit);
    throw err;
  }

  async function login(user: string, password: string, project: string): Promise<{ token: string; projectId: string; userId: string }> {
    const res = await fetch(`${url}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, password, domain: { id: 'default' } } } },
          scope: { project: { name: project, domain: { id: 'default' } } },
        },
      }),
    });
    const token = res.headers.get('x-subject-token');
    const text = await res.text();
    if (res.status !== 201 || !token) throw new Error(`token for ${user}@${project}: HTTP ${res.status} ${text}`);
    const body = JSON.parse(text) as { token: { project: { id: string }; user: { id: string } } };
    return { token, projectId: body.token.project.id, userId: body.token.user.id };
  }

  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    dir,
    stop() {
      stopped ??= runScript('stop-keystone.sh', [dir, '--remove'], 30_000, {}).then(() => {
        process.removeListener('exit', onExit);
      });
      return stopped;
    },
    async token(user, password, project) {
      return (await login(user, password, project)).token;
    },
    login,
  };
}

/** The config sections of a Gaze in Keystone mode, with the service user start-keystone.sh seeds. */
export function keystoneAuthSections(keystoneUrl: string, region = 'RegionOne'): Record<string, Record<string, string>> {
  return {
    paste_deploy: { flavor: 'keystone' },
    keystone_authtoken: {
      auth_url: keystoneUrl,
      www_authenticate_uri: keystoneUrl,
      username: 'gaze',
      password: 'gaze-secret',
      project_name: 'service',
      user_domain_id: 'default',
      project_domain_id: 'default',
      region_name: region,
    },
  };
}
