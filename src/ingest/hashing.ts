import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { INGEST_BUFFER_BYTES } from './buffers.ts';
import type { Logger } from '../util/logger.ts';

// Hashing runs on worker threads so a multi-GiB upload never blocks the event loop. Bytes reach the
// worker through a few slots per job, each an ArrayBuffer that goes to the worker and back (transferred,
// not copied): one copy, into the slot. Not SharedArrayBuffers: Node 20 copies into those with V8's
// word-by-word relaxed memmove, which cost the main thread about 0.3 CPU-s per GiB, against a few
// hundredths for a plain memcpy. One worker computes every digest of a
// job (md5 then sha512 on each slot): about 400 MiB/s on one core, above what a disk takes, with half
// the messages and thread wake-ups of one worker per digest, and slightly less CPU per GiB (measured
// side by side: 230-261 MiB/s and 6.2-7.1 CPU-s/GiB against 196-244 and 6.3-7.7). Concurrent uploads
// spread over the workers.

// Each filled slot costs one message (and one thread wake-up); 1 MiB slots keep that small while four
// concurrent uploads stay inside the memory target (larger slots measured no faster).
const SLOT_BYTES = 1 << 20;
const SLOTS_PER_JOB = 4;

interface PoolWorker {
  worker: Worker;
  jobs: number;
  alive: boolean;
}
type Waiter = { ack: (slot: number, buffer: ArrayBuffer) => void; digests: (hex: string[] | null) => void; worker: PoolWorker };

class HashWorkerPool {
  private workers: PoolWorker[] = [];
  private readonly handlers = new Map<string, Waiter>();
  private nextJob = 0;

  constructor(private readonly size: number) {}

  private spawn(): PoolWorker {
    const pw: PoolWorker = { worker: new Worker(new URL('./hash-worker.mjs', import.meta.url)), jobs: 0, alive: true };
    pw.worker.on('message', (msg: { op: string; job: string; slot?: number; buffer?: ArrayBuffer; hex?: string[] | null }) => {
      const handler = this.handlers.get(msg.job);
      if (!handler) return;
      if (msg.op === 'ack') handler.ack(msg.slot!, msg.buffer!);
      else if (msg.op === 'digest') handler.digests(msg.hex ?? null);
    });
    // A worker that fails or exits takes only its own jobs down (each digest rejects, so each upload
    // fails); the pool starts another worker for the next job.
    const lost = (err?: Error) => {
      if (!pw.alive) return;
      pw.alive = false;
      this.workers = this.workers.filter((w) => w !== pw);
      if (err) reportWorkerFailure(err);
      for (const handler of [...this.handlers.values()].filter((h) => h.worker === pw)) handler.digests(null);
    };
    pw.worker.on('error', lost);
    pw.worker.on('exit', () => lost());
    // Idle workers must not keep the process alive (unref after the listeners: adding a 'message'
    // listener refs the port again); a worker with jobs is ref'd so pending digests arrive.
    pw.worker.unref();
    return pw;
  }

  ensure(): void {
    while (this.workers.length < this.size) this.workers.push(this.spawn());
  }

  /** Starts a job (its digests) on the least busy worker; returns its handle. */
  start(algos: string[], handlers: Omit<Waiter, 'worker'>): { post(msg: object, transfer?: ArrayBuffer[]): void; job: string; release(): void } {
    this.ensure();
    const pw = this.workers.reduce((a, b) => (b.jobs < a.jobs ? b : a));
    if (pw.jobs++ === 0) pw.worker.ref();
    const job = `j${this.nextJob++}`;
    this.handlers.set(job, { ...handlers, worker: pw });
    pw.worker.postMessage({ op: 'start', job, algos });
    let released = false;
    return {
      job,
      post: (msg, transfer) => {
        if (pw.alive) pw.worker.postMessage({ ...msg, job }, transfer);
      },
      release: () => {
        if (released) return;
        released = true;
        if (--pw.jobs === 0 && pw.alive) pw.worker.unref();
        this.handlers.delete(job);
      },
    };
  }

  async close(): Promise<void> {
    // Jobs still running on them fail (their 'exit' handler), rather than wait forever.
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
}

let pool: HashWorkerPool | null = null;
function sharedPool(): HashWorkerPool {
  pool ??= new HashWorkerPool(Math.max(2, availableParallelism()));
  return pool;
}

/** Starts the hash workers now, so that the first upload does not wait for threads to boot. */
/** Where a failed worker is reported: the service's logger once it started the pool, else a process warning. */
let reportWorkerFailure = (err: Error) => process.emitWarning(`a hash worker failed: ${err.stack ?? err.message}`);

export function startHashWorkers(log?: Logger): void {
  if (log) reportWorkerFailure = (err) => log.error({ err }, 'a hash worker failed');
  sharedPool().ensure();
}

export async function closeHashWorkers(): Promise<void> {
  await pool?.close();
  pool = null;
}

export type Digests = Record<string, string>;

/**
 * Computes the given digests (e.g. md5 and sha512) of the bytes fed to it, on a worker. Each chunk is
 * copied into a free slot; `update` returns a promise only when every slot is away at the worker, so
 * the common case costs one memcpy and no promise.
 */
export class Hasher {
  readonly digests: Promise<Digests>;
  /** A slot's buffer is away (null here) while the worker hashes it. */
  private readonly views: (Buffer | null)[] = [];
  private readonly free: number[] = [];
  private readonly handle: ReturnType<HashWorkerPool['start']>;
  private current = -1;
  private fill = 0;
  private waitingForSlot: (() => void) | null = null;
  private resolveDigests!: (d: Digests) => void;
  private rejectDigests!: (e: Error) => void;
  private settled = false;

  /** `onLost`: the worker died; the digests will never come. */
  constructor(
    private readonly algorithms: string[],
    private readonly onLost: (err: Error) => void,
  ) {
    this.digests = new Promise((resolve, reject) => {
      this.resolveDigests = resolve;
      this.rejectDigests = reject;
    });
    this.digests.catch(() => {});
    for (let i = 0; i < SLOTS_PER_JOB; i++) {
      this.views.push(Buffer.from(new ArrayBuffer(SLOT_BYTES)));
      this.free.push(i);
    }
    this.handle = sharedPool().start(algorithms, {
      ack: (slot, buffer) => this.onAck(slot, buffer),
      digests: (hex) => this.onDigests(hex),
    });
  }

  private onAck(slot: number, buffer: ArrayBuffer): void {
    this.views[slot] = Buffer.from(buffer);
    this.free.push(slot);
    const wake = this.waitingForSlot;
    this.waitingForSlot = null;
    wake?.();
  }

  private onDigests(hex: string[] | null): void {
    if (hex === null) {
      // The worker is gone: the slots it held will never be acknowledged, so stop now.
      if (!this.settled) this.onLost(new Error('a hash worker was lost; the digest cannot be computed'));
      return;
    }
    this.settled = true;
    this.handle.release();
    this.resolveDigests(Object.fromEntries(this.algorithms.map((a, i) => [a, hex[i]!])));
  }

  private dispatch(): void {
    if (this.current < 0 || this.fill === 0) return;
    const buffer = this.views[this.current]!.buffer as ArrayBuffer;
    this.handle.post({ op: 'update', buffer, length: this.fill, slot: this.current }, [buffer]);
    this.views[this.current] = null; // transferred: back with the worker's acknowledgement
    this.current = -1;
    this.fill = 0;
  }

  /** Takes a chunk in; a promise when it must wait for a slot to come back from the worker. */
  update(chunk: Buffer): Promise<void> | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current < 0) {
        const slot = this.free.shift();
        if (slot === undefined) return this.waitForSlot().then(() => this.update(chunk.subarray(offset)));
        this.current = slot;
        this.fill = 0;
      }
      const n = Math.min(chunk.length - offset, SLOT_BYTES - this.fill);
      chunk.copy(this.views[this.current]!, this.fill, offset, offset + n); // native memcpy
      this.fill += n;
      offset += n;
      if (this.fill === SLOT_BYTES) this.dispatch();
    }
    return undefined;
  }

  private waitForSlot(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waitingForSlot = resolve;
    });
  }

  /** Sends what is left and asks for the digests. */
  end(): Promise<Digests> {
    this.dispatch();
    this.handle.post({ op: 'digest' });
    return this.digests;
  }

  abort(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.handle.post({ op: 'abort' });
    this.handle.release();
    this.rejectDigests(err ?? new Error('hashing aborted'));
  }
}

/** A pass-through stream over a Hasher. `digests` resolves once the stream has flushed. */
export class HashingStream extends Transform {
  private readonly hasher: Hasher;
  readonly digests: Promise<Digests>;

  constructor(algorithms: string[]) {
    super({ highWaterMark: INGEST_BUFFER_BYTES });
    this.hasher = new Hasher(algorithms, (err) => {
      if (!this.destroyed) this.destroy(err);
    });
    this.digests = this.hasher.digests;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const wait = this.hasher.update(chunk);
    if (wait) wait.then(() => callback(null, chunk), callback);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.hasher.end().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.hasher.abort(err);
    callback(err);
  }
}
