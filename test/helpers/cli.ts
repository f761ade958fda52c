// Runs the real OpenStack clients (Debian's python3-openstackclient and python3-glanceclient) against a
// Gaze for end-to-end tests. Each run gets its own temporary HOME (and working directory), so that
// glanceclient's schema cache (~/.glanceclient), openstacksdk's cache and any clouds.yaml never leak
// from one run into another or from the machine into a test.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Always the system clients: another python3 may come first on PATH. */
export const OPENSTACK = '/usr/bin/openstack';
export const GLANCE = '/usr/bin/glance';

export interface CliResult {
  /** The command line, for failure messages. */
  command: string;
  stdout: string;
  stderr: string;
  /** The exit code; null when the process was killed (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliOptions {
  /** Extra environment (OS_* variables and the like). */
  env?: Record<string, string>;
  /** Milliseconds before the run is killed (default 90 s). */
  timeoutMs?: number;
  /** Working directory; relative `--file` arguments resolve against it. Defaults to the temporary HOME. */
  cwd?: string;
  /**
   * `'empty'` (default): standard input is an empty pipe. `'closed'`: the client starts with file
   * descriptor 0 closed (the shell's `<&-`), which glanceclient takes as "no stdin at all". It needs
   * that for `image-create-via-import`: any non-TTY stdin (a pipe, /dev/null) counts as image data
   * there, and then `--file` fails with "You cannot use both --file and stdin" and `--uri` with
   * "You cannot pass data via stdin".
   */
  stdin?: 'empty' | 'closed';
}

/** The environment of a CLI run: the test's, minus anything that configures an OpenStack client. */
function cliEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(OS_|OPENSTACK_|GLANCE_|PYTHON|VIRTUAL_ENV$)/.test(k)) continue;
    env[k] = v;
  }
  return {
    ...env,
    HOME: home,
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_CONFIG_HOME: path.join(home, '.config'),
    // Plain, unwrapped, uncoloured output; English messages.
    COLUMNS: '400',
    CLIFF_MAX_TERM_WIDTH: '0',
    LC_ALL: 'C.UTF-8',
    LANG: 'C.UTF-8',
    PYTHONIOENCODING: 'utf-8',
    PYTHONWARNINGS: 'ignore',
    ...extra,
  };
}

/**
 * Runs `file args...` with a fresh temporary HOME that is removed afterwards. Never rejects for a
 * non-zero exit: the caller asserts on `code`. Standard input is an empty pipe (closed at once), as
 * /dev/null would be: not a TTY, so the clients see "no image data" as zero bytes, and nothing blocks.
 */
export async function runCli(file: string, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const home = mkdtempSync(path.join(tmpdir(), 'gaze-cli-home-'));
  const closed = opts.stdin === 'closed';
  const command = [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ') + (closed ? ' <&-' : '');
  // With stdin closed, /bin/sh closes descriptor 0 and then becomes the client (exec): Node itself can
  // only give a child a pipe or /dev/null there.
  const [bin, argv]: [string, string[]] = closed ? ['/bin/sh', ['-c', 'exec "$0" "$@" <&-', file, ...args]] : [file, args];
  try {
    return await new Promise<CliResult>((resolve, reject) => {
      const child = execFile(
        bin,
        argv,
        {
          cwd: opts.cwd ?? home,
          env: cliEnv(home, opts.env),
          timeout: opts.timeoutMs ?? 90_000,
          killSignal: 'SIGKILL',
          maxBuffer: 64 * 1024 * 1024,
          encoding: 'utf8',
        },
        (err, stdout, stderr) => {
          if (err && typeof err.code === 'string') {
            // ENOENT, EACCES, ...: the client could not be started at all.
            reject(new Error(`${command}: ${err.message}`));
            return;
          }
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          const signal = (err?.signal ?? null) as NodeJS.Signals | null;
          resolve({ command, stdout, stderr, code, signal });
        },
      );
      child.stdin?.end();
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A readable description of a run, for assertion messages. */
export function describeRun(r: CliResult): string {
  const status = r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return `${r.command}\n(${status})\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Throws with the full output unless the run exited 0; returns stdout. */
export function ok(r: CliResult): string {
  if (r.code !== 0) throw new Error(`CLI run failed: ${describeRun(r)}`);
  return r.stdout;
}

/** Throws unless the run exited non-zero; returns stdout + stderr (where the clients print errors). */
export function failed(r: CliResult): string {
  if (r.code === 0 || r.code === null) throw new Error(`CLI run was expected to fail: ${describeRun(r)}`);
  return `${r.stdout}\n${r.stderr}`;
}

/** Parses the stdout of a successful `-f json` run. */
export function json<T = unknown>(r: CliResult): T {
  const out = ok(r);
  try {
    return JSON.parse(out) as T;
  } catch (err) {
    throw new Error(`CLI output is not JSON (${(err as Error).message}): ${describeRun(r)}`);
  }
}

/** stdout of a successful `-f value` run, trimmed. */
export function value(r: CliResult): string {
  return ok(r).trim();
}

/** One row of a `-f json` image list. */
export interface ImageRow {
  ID: string;
  Name: string;
  Status: string;
  [column: string]: unknown;
}

/** The `openstack` CLI, bound to a way of authenticating. */
export type OpenStack = (args: string[], opts?: CliOptions) => Promise<CliResult>;

/** `openstack --os-auth-type none --os-endpoint URL ...` (Gaze's no-auth mode). */
export function noAuthOpenStack(url: string): OpenStack {
  return (args, opts = {}) => runCli(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', url, ...args], opts);
}

export interface KeystoneUser {
  /** Keystone's base URL without a version (the helper adds /v3). */
  authUrl: string;
  username: string;
  password: string;
  project: string;
  region?: string;
}

/** The variables for a password login of a default-domain user; the image endpoint comes from the catalog. */
export function keystoneEnv(user: KeystoneUser): Record<string, string> {
  return {
    OS_AUTH_TYPE: 'password',
    OS_AUTH_URL: `${user.authUrl.replace(/\/+$/, '')}/v3`,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: user.username,
    OS_PASSWORD: user.password,
    OS_PROJECT_NAME: user.project,
    OS_USER_DOMAIN_ID: 'default',
    OS_PROJECT_DOMAIN_ID: 'default',
    OS_REGION_NAME: user.region ?? 'RegionOne',
    OS_INTERFACE: 'public',
  };
}

/** `openstack ...` as a Keystone user (through OS_* variables). */
export function keystoneOpenStack(user: KeystoneUser): OpenStack {
  const env = keystoneEnv(user);
  return (args, opts = {}) => runCli(OPENSTACK, args, { ...opts, env: { ...env, ...opts.env } });
}

/** The `glance` CLI, bound to a way of authenticating. */
export type Glance = (args: string[], opts?: CliOptions) => Promise<CliResult>;

/** `glance ...` as a Keystone user (through OS_* variables; the image endpoint comes from the catalog). */
export function keystoneGlance(user: KeystoneUser): Glance {
  const env = keystoneEnv(user);
  return (args, opts = {}) => runCli(GLANCE, args, { ...opts, env: { ...env, ...opts.env } });
}

/** `glance --os-image-url URL --os-auth-token TOKEN ...` (no Keystone involved). */
export function tokenGlance(url: string, token = 'x'): (args: string[], opts?: CliOptions) => Promise<CliResult> {
  return (args, opts = {}) => runCli(GLANCE, ['--os-image-url', url, '--os-auth-token', token, ...args], opts);
}

/**
 * Parses a PrettyTable as glanceclient prints it. A two-column `Property | Value` table becomes an
 * object (a value wrapped over several lines, whose continuation rows have an empty first cell, is
 * joined back together); any other table becomes one object per row keyed by the header.
 */
export function parseTable(text: string): Record<string, string>[] {
  const rows = text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.startsWith('|'));
  const cells = rows.map((l) =>
    l
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim()),
  );
  if (cells.length === 0) return [];
  const [header, ...body] = cells;
  return body.map((row) => Object.fromEntries(header.map((h, i) => [h, row[i] ?? ''])));
}

/** A glanceclient `Property | Value` table as an object. */
export function parsePropertyTable(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | null = null;
  for (const row of parseTable(text)) {
    const key = row.Property;
    const val = row.Value ?? '';
    if (key === undefined) throw new Error(`not a Property/Value table:\n${text}`);
    if (key === '' && last !== null) out[last] += val;
    else {
      out[key] = val;
      last = key;
    }
  }
  return out;
}

export function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function sha512(data: Buffer): string {
  return createHash('sha512').update(data).digest('hex');
}

export function md5File(file: string): string {
  return md5(readFileSync(file));
}

/** The system Python (the one Debian's glanceclient and keystoneauth1 are installed for). */
export const PYTHON3 = '/usr/bin/python3';

const GLANCE_DOWNLOAD_PY = fileURLToPath(new URL('./glance_download.py', import.meta.url));

export interface GlanceDownloadRequest {
  /** The local image (in `user.region`, queued, with formats set) to import into. */
  imageId: string;
  remoteRegion: string;
  remoteImageId: string;
  /** Default `public`. */
  remoteServiceInterface?: string;
}

/** What test/helpers/glance_download.py printed: whether the import call got its 202. */
export interface GlanceDownloadAnswer {
  accepted: boolean;
  status?: number | null;
  error?: string;
  run: CliResult;
}

/**
 * Asks the image service of `user.region` (from the catalog) for a glance-download import, through
 * python-glanceclient's library (test/helpers/glance_download.py): Debian's glance CLI loses the remote
 * region and image id. Resolves with the helper's answer; rejects only if its output is not understood.
 */
export async function glanceDownloadImport(user: KeystoneUser, req: GlanceDownloadRequest, opts: CliOptions = {}): Promise<GlanceDownloadAnswer> {
  const run = await runCli(
    PYTHON3,
    [
      GLANCE_DOWNLOAD_PY,
      '--auth-url',
      user.authUrl,
      '--username',
      user.username,
      '--project',
      user.project,
      '--region',
      user.region ?? 'RegionOne',
      '--remote-region',
      req.remoteRegion,
      '--remote-image-id',
      req.remoteImageId,
      '--remote-service-interface',
      req.remoteServiceInterface ?? 'public',
      req.imageId,
    ],
    { ...opts, env: { OS_PASSWORD: user.password, ...opts.env } },
  );
  const line = run.stdout.trim().split('\n').pop() ?? '';
  let parsed: { accepted?: unknown; status?: number | null; error?: string };
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`glance_download.py printed no JSON answer: ${describeRun(run)}`);
  }
  if (typeof parsed.accepted !== 'boolean' || parsed.accepted !== (run.code === 0)) {
    throw new Error(`glance_download.py answer does not match its exit status: ${describeRun(run)}`);
  }
  return { accepted: parsed.accepted, status: parsed.status, error: parsed.error, run };
}
