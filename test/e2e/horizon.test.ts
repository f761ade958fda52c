// End to end with the real dashboard: Debian's Horizon (openstack-dashboard, Zed) in front of a real
// Keystone whose catalog names this Gaze as the image service, driven in headless Chromium by
// scripts/horizon_flow.py (Selenium): log in, list, upload, details, edit, visibility, Update Metadata
// with a loaded metadefs namespace, delete. Once with HORIZON_IMAGES_UPLOAD_MODE "legacy" (Horizon's
// server uploads the data) and once with "direct" (the browser PUTs it to Gaze across origins: CORS).
// Beyond the flow's own checks (no error toast), every Image API call Horizon made must have succeeded
// (its glanceclient DEBUG log) and Gaze must have answered no 5xx.
// Skipped only when scripts/install-horizon-deps.sh cannot install the packages.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchGaze, runGaze } from '../helpers/gaze.ts';
import { freePort, keystoneAuthSections, startKeystone, type RunningKeystone } from '../helpers/keystone.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const PY = '/usr/bin/python3'; // Debian's Django/Horizon and selenium live in the system python
const SETTINGS_DIR = '/etc/openstack-dashboard/local_settings.d';
const MANAGE = '/usr/share/openstack-dashboard/manage.py';
// Horizon's local_settings.py creates this on its first start; the test removes it if it made it (it is
// written root-owned 0600, which an Apache-served Horizon running as www-data could not read).
const SECRET_KEY_FILE = '/var/lib/openstack-dashboard/secret-key/.secret_key_store';
const SEED_IMAGE = 'gaze-horizon-seed';
/** The seeded image's id: its own requests' log lines may land after a flow's log slice begins. */
let seedImageId = '';
const MODES = ['legacy', 'direct'] as const;

// Installing needs apt and the Debian archive; without them there is nothing to drive.
const install = spawnSync('bash', [path.join(repo, 'scripts/install-horizon-deps.sh')], { encoding: 'utf8', timeout: 400_000 });
const skip =
  install.status === 0
    ? false
    : `scripts/install-horizon-deps.sh could not install Horizon/Chromium/selenium: ${(install.stderr || install.error?.message || '').trim().split('\n').slice(-3).join(' ')}`;

let work = '';
let keystone: RunningKeystone | undefined;
let gaze: Awaited<ReturnType<typeof launchGaze>> | undefined;
let horizon: ChildProcess | undefined;
let settingsFile = '';
let madeSecretKey = false;
let horizonPort = 0;
// Only a Horizon started with this value in its environment applies the settings file (see below).
const runToken = randomBytes(8).toString('hex');

/** Removes what must not outlive the test even if it dies: the settings file, the secret key it caused. */
function removeSystemFiles(): void {
  if (settingsFile) rmSync(settingsFile, { force: true });
  if (madeSecretKey) rmSync(SECRET_KEY_FILE, { force: true });
}
function onExit(): void {
  if (horizon && horizon.exitCode === null && horizon.signalCode === null) horizon.kill('SIGKILL');
  removeSystemFiles();
}

before(
  async () => {
    if (skip) return;
    process.once('exit', onExit);
    work = mkdtempSync(path.join(tmpdir(), 'gaze-horizon-e2e-'));
    const gazePort = await freePort();
    horizonPort = await freePort();
    keystone = await startKeystone({ regionOnePort: gazePort, regionTwoPort: await freePort() });

    const gazeDir = path.join(work, 'gaze');
    mkdirSync(gazeDir);
    const sections: Record<string, Record<string, string>> = {
      DEFAULT: { bind_host: '127.0.0.1', bind_port: String(gazePort), data_dir: path.join(gazeDir, 'data') },
      ...keystoneAuthSections(keystone.url, 'RegionOne'),
      // Direct upload mode: the browser on Horizon's origin PUTs the image data to Gaze.
      cors: { allowed_origin: `http://127.0.0.1:${horizonPort}` },
    };
    const conf = path.join(gazeDir, 'gaze.conf');
    writeFileSync(
      conf,
      Object.entries(sections)
        .map(
          ([name, opts]) =>
            `[${name}]\n${Object.entries(opts)
              .map(([k, v]) => `${k} = ${v}`)
              .join('\n')}\n`,
        )
        .join('\n'),
    );
    // Horizon's image pages list the namespaces for OS::Glance::Image; Update Metadata needs them.
    // As glance-manage's: the schema first, then the definitions.
    const synced = await runGaze(['db', 'sync', '--config', conf], { cwd: gazeDir });
    assert.equal(synced.code, 0, `gaze db sync: ${synced.stdout}${synced.stderr}`);
    const loaded = await runGaze(['db', 'load-metadefs', '--config', conf], { cwd: gazeDir });
    assert.equal(loaded.code, 0, `gaze db load-metadefs: ${loaded.stdout}${loaded.stderr}`);
    // Gaze logs one JSON line per request with its status, read by gazeStatuses().
    gaze = await launchGaze({ args: ['--config', conf], cwd: gazeDir, port: gazePort });
    await seedPublicImage();
    madeSecretKey = !existsSync(SECRET_KEY_FILE);
  },
  { timeout: 180_000 },
);

after(
  async () => {
    await stopHorizon();
    await gaze?.stop();
    await keystone?.stop();
    removeSystemFiles();
    process.removeListener('exit', onExit);
    if (work) rmSync(work, { recursive: true, force: true });
  },
  { timeout: 60_000 },
);

/** A public image of the admin project, for the member's list to show something not its own. */
async function seedPublicImage(): Promise<void> {
  const token = await keystone!.token('admin', 'admin-secret', 'admin');
  const created = await fetch(`${gaze!.url}/v2/images`, {
    method: 'POST',
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: SEED_IMAGE, disk_format: 'raw', container_format: 'bare', visibility: 'public' }),
  });
  const image = (await created.json()) as { id: string };
  assert.equal(created.status, 201, JSON.stringify(image));
  seedImageId = image.id;
  const uploaded = await fetch(`${gaze!.url}/v2/images/${image.id}/file`, {
    method: 'PUT',
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array(randomBytes(4096)),
  });
  assert.equal(uploaded.status, 204, await uploaded.text());
}

/**
 * The settings snippet Horizon execs after local_settings.py. It does nothing unless the Horizon
 * process carries this run's token, so another Horizon on the machine is not pointed at this test's
 * short-lived Keystone while the file exists.
 */
function writeSettings(mode: string, glanceLog: string): void {
  const py = (v: unknown) => JSON.stringify(v); // JSON strings and lists are Python literals here
  settingsFile = path.join(SETTINGS_DIR, `_9990_gaze_e2e_${process.pid}.py`);
  writeFileSync(
    settingsFile,
    `# Written by Gaze's test/e2e/horizon.test.ts for one run; removed afterwards.
import os as _gaze_os
if _gaze_os.environ.get("GAZE_HORIZON_E2E") == ${py(runToken)}:
    OPENSTACK_KEYSTONE_URL = ${py(`${keystone!.url}/v3`)}
    OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
    ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    # No memcached: sessions live in this one process's memory.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    HORIZON_IMAGES_UPLOAD_MODE = ${py(mode)}
    OPENSTACK_ENDPOINT_TYPE = "publicURL"
    # Every Image API request and answer, for the test to read (the console handler drops DEBUG).
    LOGGING["handlers"]["gaze_e2e_glance"] = {"level": "DEBUG", "class": "logging.FileHandler",
                                              "filename": ${py(glanceLog)}, "formatter": "console"}
    LOGGING["loggers"]["glanceclient"] = {"handlers": ["gaze_e2e_glance"], "level": "DEBUG", "propagate": False}
`,
  );
}

async function startHorizon(mode: string, dir: string): Promise<{ output: () => string }> {
  let output = '';
  // runserver writes nothing but may want a writable cwd; --noreload keeps it one process (our PID).
  horizon = spawn(PY, [MANAGE, 'runserver', '--insecure', '--noreload', `127.0.0.1:${horizonPort}`], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GAZE_HORIZON_E2E: runToken },
  });
  horizon.stdout!.on('data', (d) => (output += d));
  horizon.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (horizon.exitCode !== null) throw new Error(`Horizon (${mode}) exited with ${horizon.exitCode}:\n${output}`);
    try {
      const res = await fetch(`http://127.0.0.1:${horizonPort}/auth/login/`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`Horizon (${mode}) did not answer within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { output: () => output };
}

async function stopHorizon(): Promise<void> {
  const child = horizon;
  horizon = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface FlowSummary {
  ok: boolean;
  passed: string[];
  failed: string[];
  skipped: string[];
  failures: { step: string; error: string; url?: string }[];
  browser_errors?: string[];
}

/** Runs horizon_flow.py in its own process group, so that a timeout also ends its chromedriver/Chromium. */
function runFlow(mode: string, shots: string): Promise<{ code: number | null; summary: FlowSummary | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      PY,
      [
        path.join(repo, 'scripts/horizon_flow.py'),
        '--url',
        `http://127.0.0.1:${horizonPort}`,
        '--screenshots',
        shots,
        '--member-user',
        'demo',
        '--admin-user',
        'admin',
        '--expect-image',
        SEED_IMAGE,
        '--name',
        `gaze-horizon-${mode}`,
        '--timeout',
        '45',
      ],
      {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HORIZON_MEMBER_PASSWORD: 'demo-secret', HORIZON_ADMIN_PASSWORD: 'admin-secret' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 150_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      let summary: FlowSummary | null = null;
      try {
        summary = JSON.parse(stdout) as FlowSummary;
      } catch {
        /* reported below */
      }
      resolve({ code, summary, stdout, stderr });
    });
  });
}

/**
 * The Image API calls glanceclient logged as failed. On success it logs the curl command, then
 * "\nHTTP/1.1 200 OK" with headers and body; on an error answer it logs only
 * "Request returned failure status NNN." (its exception carries the body). Requests of concurrent
 * threads may interleave, so each failure is paired with the latest request logged before it.
 */
function glanceFailures(log: string): { status: number; request: string }[] {
  const failures: { status: number; request: string }[] = [];
  let lastRequest = '';
  for (const line of log.split('\n')) {
    // The method, the JSON body (-d) and the URL (last); the headers (the token among them) are left out.
    const curl = / curl -g -i -X (\S+) .*?(?: -d '(.*)')? (https?:\/\/\S+)$/.exec(line);
    if (curl) {
      lastRequest = `${curl[1]} ${curl[3]}${curl[2] ? ` ${curl[2]}` : ''}`;
      continue;
    }
    const failed = /Request returned failure status (\d{3})/.exec(line) ?? /^HTTP\/\d\.\d ([45]\d\d) /.exec(line);
    if (failed) failures.push({ status: Number(failed[1]), request: lastRequest });
  }
  return failures;
}

/** Method, URL and status of every request Gaze answered (its 'request completed' log lines). */
function gazeStatuses(log: string): { method: string; url: string; status: number }[] {
  const answered: { method: string; url: string; status: number }[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { reqId?: string; msg?: string; method?: string; url?: string; status?: number };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.reqId && entry.msg === 'request completed') answered.push({ method: entry.method!, url: entry.url!, status: entry.status! });
  }
  return answered;
}

for (const mode of MODES) {
  test(`Horizon, upload mode "${mode}": the Images panel flow against Gaze`, { skip, timeout: 200_000 }, async () => {
    const dir = path.join(work, `horizon-${mode}`);
    mkdirSync(dir);
    const glanceLog = path.join(dir, 'glanceclient.log');
    // Screenshots of each step are kept as test artifacts (git-ignored), replaced by the next run.
    const shots = path.join(repo, 'test-artifacts', 'horizon', mode);
    rmSync(shots, { recursive: true, force: true });
    mkdirSync(shots, { recursive: true });
    const gazeLogStart = gaze!.output().length;
    // Settings are read when Horizon starts: rewrite them, then start a fresh Horizon for this mode.
    writeSettings(mode, glanceLog);
    const started = await startHorizon(mode, dir);
    let flow: Awaited<ReturnType<typeof runFlow>>;
    try {
      flow = await runFlow(mode, shots);
    } finally {
      await stopHorizon();
    }
    const glance = existsSync(glanceLog) ? readFileSync(glanceLog, 'utf8') : '';
    // The log is written asynchronously: the seeding's last lines may arrive after the slice begins.
    const answered = gazeStatuses(gaze!.output().slice(gazeLogStart)).filter((r) => !r.url.includes(seedImageId));
    const refused = answered.filter((r) => r.status >= 400).map((r) => `${r.method} ${r.url} -> ${r.status}`);
    const context = [
      `Gaze answers >= 400: ${refused.length ? refused.join('; ') : 'none'}`,
      `screenshots: ${shots}`,
      `Horizon's output (tail):\n${started.output().split('\n').slice(-15).join('\n')}`,
    ].join('\n');

    assert.ok(flow.summary, `horizon_flow.py printed no summary (exit ${flow.code}):\n${flow.stdout}\n${flow.stderr}\n${context}`);
    assert.ok(glance.includes('glanceclient'), `Horizon's glanceclient log is empty: were the settings applied?\n${context}`);
    const summary = flow.summary!;
    assert.deepEqual(summary.failures, [], `failed steps (passed: ${summary.passed.join(', ')}; skipped: ${summary.skipped.join(', ')})\n${context}`);
    assert.ok(summary.ok && summary.failed.length === 0 && summary.skipped.length === 0, JSON.stringify(summary));
    assert.ok(summary.passed.includes('update-metadata') && summary.passed.includes('delete-image'), JSON.stringify(summary.passed));
    // In direct mode the browser talks to Gaze itself: a refused preflight or upload shows only here.
    const toGaze = (summary.browser_errors ?? []).filter((e) => e.includes(gaze!.url) || /CORS|Access-Control/i.test(e));
    assert.deepEqual(toGaze, [], 'the browser reported failed requests to Gaze');

    assert.deepEqual(glanceFailures(glance), [], `Image API calls Horizon made that failed\n${context}`);
    assert.deepEqual(
      answered.filter((r) => r.status >= 500),
      [],
      'Gaze answered 5xx',
    );
    // Sanity: the flow did reach Gaze the way the mode says.
    const put = answered.filter((r) => r.method === 'PUT' && r.url.endsWith('/file'));
    assert.equal(put.length, 1, `one PUT /file expected: ${JSON.stringify(answered.filter((r) => r.method !== 'GET'))}`);
    const preflight = answered.some((r) => r.method === 'OPTIONS' && r.url.endsWith('/file'));
    assert.equal(preflight, mode === 'direct', `a CORS preflight of PUT /file iff direct mode (${mode})`);
  });
}
