// Transfers for the side-by-side bench, with curl as the client of both services (as an operator would
// measure them): one curl process per transfer, its own timing.

import { spawn } from 'node:child_process';
import { MiB } from './bytes.ts';

export interface Transfer {
  status: number;
  bytes: number;
  seconds: number;
  mibs: number;
}

/** Runs curl with `args` and the write-out format that reports the status, bytes and time. */
function curl(args: string[]): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_upload} %{size_download} %{time_total}', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const [status, up, down, total] = out.trim().split(' ').map(Number);
      if (code !== 0 || !Number.isFinite(total)) return reject(new Error(`curl ${args.join(' ')}: exit ${code}: ${err.trim()}`));
      const bytes = Math.max(up, down);
      resolve({ status, bytes, seconds: total, mibs: bytes / MiB / total });
    });
  });
}

function authHeaders(token: string | null): string[] {
  return token ? ['-H', `X-Auth-Token: ${token}`] : [];
}

/** PUT of a file's bytes (PUT /v2/images/{id}/file or /stage); the answer must be 204. */
export async function putFile(url: string, token: string | null, file: string): Promise<Transfer> {
  const t = await curl([...authHeaders(token), '-H', 'Content-Type: application/octet-stream', '-T', file, url]);
  if (t.status !== 204) throw new Error(`PUT ${url}: HTTP ${t.status}`);
  return t;
}

/** GET of a body into /dev/null, optionally a Range; the answer must be 200 (206 for a range) with `expected` bytes. */
export async function getBody(url: string, token: string | null, expected: number, range?: string): Promise<Transfer> {
  const t = await curl([...authHeaders(token), ...(range ? ['-H', `Range: bytes=${range}`] : []), url]);
  const want = range ? 206 : 200;
  if (t.status !== want || t.bytes !== expected)
    throw new Error(`GET ${url}${range ? ` (${range})` : ''}: HTTP ${t.status}, ${t.bytes} bytes (expected ${want}, ${expected})`);
  return t;
}
