// Starts a real OpenStack Swift for a test file (scripts/start-swift.sh) in a temp dir on a free loopback
// port: memcached, account/container/object servers and a proxy that speaks both the Swift API (tempauth,
// and Keystone tokens when asked) and the S3 API (s3api). User test:tester / testing (.admin) for both.
// Starting takes about 5 s once the Debian packages are installed (scripts/install-system-deps.sh), so
// share one per test file.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './keystone.ts';
import { runScript } from './scripts.ts';

export interface RunningSwift {
  /** The proxy, e.g. http://127.0.0.1:40123 (serves /auth/v1.0, /v1/… and the S3 API). */
  url: string;
  port: number;
  dir: string;
  /** S3 API settings (path-style, region us-east-1). */
  s3: { endpoint: string; accessKey: string; secretKey: string };
  /** tempauth v1 settings (GET authUrl with X-Storage-User / X-Storage-Pass). */
  swift: { authUrl: string; user: string; key: string };
  /** Milliseconds start-swift.sh took. */
  startMs: number;
  /** Object names in a container, read through the Swift API; null when the container does not exist. */
  listContainer(container: string): Promise<string[] | null>;
  stop(): Promise<void>;
}

/** The PIDs start-swift.sh recorded under dir/run (its servers and memcached). */
function recordedPids(dir: string): number[] {
  const run = path.join(dir, 'run');
  try {
    return readdirSync(run)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(path.join(run, f), 'utf8').trim()))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

/** keystoneUrl: Keystone tokens are taken too (accounts KEY_<project id>, for members and admins), beside tempauth's. */
export async function startSwift(opts: { keystoneUrl?: string } = {}): Promise<RunningSwift> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-swift-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;

  // If the test process dies without calling stop(), do not leave Swift behind: only the processes whose
  // PIDs this very start recorded are signalled.
  const onExit = () => {
    for (const pid of recordedPids(dir)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const started = Date.now();
  try {
    const out = await runScript('start-swift.sh', [dir, String(port)], 120_000, opts.keystoneUrl ? { SWIFT_KEYSTONE_URL: opts.keystoneUrl } : {});
    if (!out.includes(`READY ${url}`)) throw new Error(`start-swift.sh did not print READY ${url}:\n${out}`);
  } catch (err) {
    await runScript('stop-swift.sh', [dir, '--remove'], 30_000).catch(() => {});
    process.removeListener('exit', onExit);
    throw err;
  }
  const startMs = Date.now() - started;

  const swift = { authUrl: `${url}/auth/v1.0`, user: 'test:tester', key: 'testing' };
  let token: string | null = null;
  async function listContainer(container: string): Promise<string[] | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!token) {
        const auth = await fetch(swift.authUrl, { headers: { 'X-Storage-User': swift.user, 'X-Storage-Pass': swift.key } });
        await auth.arrayBuffer();
        token = auth.headers.get('x-auth-token');
      }
      const res = await fetch(`${url}/v1/AUTH_test/${encodeURIComponent(container)}?format=json`, { headers: { 'X-Auth-Token': token ?? '' } });
      if (res.status === 401) {
        token = null;
        await res.arrayBuffer();
        continue;
      }
      if (res.status === 404) {
        await res.arrayBuffer();
        return null;
      }
      if (!res.ok) throw new Error(`listing ${container}: HTTP ${res.status}`);
      return ((await res.json()) as { name: string }[]).map((o) => o.name);
    }
    throw new Error('could not log in to Swift');
  }

  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    dir,
    startMs,
    s3: { endpoint: url, accessKey: 'test:tester', secretKey: 'testing' },
    swift,
    listContainer,
    stop() {
      stopped ??= runScript('stop-swift.sh', [dir, '--remove'], 30_000).then(() => {
        process.removeListener('exit', onExit);
      });
      return stopped;
    },
  };
}

/** The options of an `s3` store on this Swift's S3 API (the bucket made on the first write), for [glance_store] or a store's section. */
export function s3StoreOptions(swift: RunningSwift, bucket: string): Record<string, string> {
  return {
    s3_store_host: swift.s3.endpoint,
    s3_store_access_key: swift.s3.accessKey,
    s3_store_secret_key: swift.s3.secretKey,
    s3_store_bucket: bucket,
    s3_store_create_bucket_on_put: 'true',
  };
}

/** The options of a `swift` store on this Swift (tempauth), for [glance_store] or a store's section. */
export function swiftStoreOptions(swift: RunningSwift, container: string): Record<string, string> {
  return {
    swift_store_auth_address: swift.swift.authUrl,
    swift_store_user: swift.swift.user,
    swift_store_key: swift.swift.key,
    swift_store_container: container,
    swift_store_create_container_on_put: 'True',
  };
}
