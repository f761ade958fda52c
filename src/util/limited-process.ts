import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

// Runs an external tool (qemu-img, bzip2, xz, unzip) on untrusted data: under CPU and address-space
// limits (util-linux prlimit, which execs the tool in the same process, so killing the pid kills the
// tool), with bounded captured output, killed at once when the caller aborts. The promise settles only
// after the process has exited, so a caller may delete the files it was writing right away.

export interface ProcessLimits {
  /** RLIMIT_CPU in seconds (the kernel kills the process past it). */
  cpuSeconds?: number;
  /** RLIMIT_AS in bytes. */
  addressSpaceBytes?: number;
}

export interface RunOptions {
  limits?: ProcessLimits;
  signal?: AbortSignal;
  /**
   * Consumes stdout instead of collecting it (e.g. pipes it through a size cap into a file); the run
   * settles after this settles, and its rejection kills the process and becomes the run's error.
   */
  consumeStdout?: (stdout: Readable) => Promise<void>;
  /** Most bytes collected from stdout and from stderr, each; more kills the process (default 1 MiB). */
  maxOutputBytes?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** The process exited non-zero or was killed by a signal (a resource limit). */
export class ProcessFailed extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly exitSignal: string | null,
    readonly stderr: string,
  ) {
    const how = exitSignal ? `was killed by ${exitSignal}` : `exited with status ${exitCode}`;
    super(`${command} ${how}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    this.name = 'ProcessFailed';
  }
}

export class ProcessOutputTooLarge extends Error {
  constructor(
    readonly command: string,
    readonly stream: 'stdout' | 'stderr',
    readonly limit: number,
  ) {
    super(`${command} wrote more than ${limit} bytes to ${stream}`);
    this.name = 'ProcessOutputTooLarge';
  }
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

/** The argv that runs `command` under the limits (prlimit only when there are limits). */
export function limitedArgv(command: string, args: string[], limits: ProcessLimits = {}): [string, string[]] {
  const prefix: string[] = [];
  if (limits.cpuSeconds !== undefined) prefix.push(`--cpu=${positive(limits.cpuSeconds, 'cpuSeconds')}`);
  if (limits.addressSpaceBytes !== undefined) prefix.push(`--as=${positive(limits.addressSpaceBytes, 'addressSpaceBytes')}`);
  if (!prefix.length) return [command, args];
  return ['prlimit', [...prefix, '--', command, ...args]];
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer, not ${n}`);
  return n;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

export async function runLimited(command: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { signal } = opts;
  if (signal?.aborted) throw abortReason(signal);
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const [file, argv] = limitedArgv(command, args, opts.limits);
  // LC_ALL=C: messages the caller may show or match stay in one language. MALLOC_ARENA_MAX: each
  // thread's malloc arena would reserve 64 MiB of address space, which the --as limit counts.
  const env = { ...process.env, LC_ALL: 'C', MALLOC_ARENA_MAX: '2' };
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });

  let failure: unknown = null;
  const stop = (err: unknown): void => {
    failure ??= err;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onAbort = (): void => stop(abortReason(signal!));
  signal?.addEventListener('abort', onAbort, { once: true });

  const stderr = collect(child.stderr, max, () => stop(new ProcessOutputTooLarge(command, 'stderr', max)));
  const consume = opts.consumeStdout;
  const stdout = consume ? null : collect(child.stdout, max, () => stop(new ProcessOutputTooLarge(command, 'stdout', max)));
  const streamed = consume ? consume(child.stdout).catch(stop) : Promise.resolve();

  try {
    const [code, sig] = await new Promise<[number | null, string | null]>((resolve) => {
      // `on`, not `once`: a later 'error' (a kill that cannot be delivered) must not be unhandled.
      child.on('error', (err) => {
        failure ??= err;
        // A process that never started emits no 'close'.
        if (child.pid === undefined) resolve([null, null]);
      });
      child.once('close', (c, s) => resolve([c, s]));
    });
    await streamed;
    if (failure) throw failure;
    if (code !== 0) throw new ProcessFailed(command, code, sig, stderr.text());
    return { stdout: stdout?.text() ?? '', stderr: stderr.text() };
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function collect(stream: Readable, max: number, onOverflow: () => void): { text(): string } {
  stream.on('error', () => {
    /* the process's exit status tells what went wrong */
  });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let overflowed = false;
  stream.on('data', (chunk: Buffer) => {
    if (overflowed) return;
    bytes += chunk.length;
    if (bytes > max) {
      overflowed = true;
      onOverflow();
      return;
    }
    chunks.push(chunk);
  });
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}
