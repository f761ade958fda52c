import { hostname } from 'node:os';
import type { TaskRow } from '../db/repos/tasks.ts';
import { ImageGone } from '../domain/image.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { nodeGone } from '../util/process.ts';
import type { ImportDeps } from './deps.ts';
import { HandedOn, ImportStopped, describeFailure } from './failures.ts';
import { taskPayload } from '../notify/payloads.ts';
import { failAndRevert, failUnfinished, failUnstarted, notifyTask, type FinishDeps } from './finish.ts';
import { fetchRemoteImage, remoteEndpoint } from './glance-download.ts';
import { parseImportInput, type CallerCredentials, type EngineOptions } from './job.ts';
import type { ImportEngine, NewTask } from './port.ts';
import type { StagingArea } from './staging-area.ts';
import type { CreateImage } from './task-kind.ts';
import { kindOf, methodOf, revertOf } from './task-kinds.ts';
import { mendLeftovers } from './leftovers.ts';

// Runs import tasks in the background. A task row is the source of truth: the process that runs it
// holds a lease (renewed by a heartbeat, which reads the row when the renewal is refused and checks the
// image on every beat), so a cancel or a delete made through any process stops the work. Tasks whose
// holder died are resumed by whoever sees the lease expire (a few times at most), or failed cleanly.
// This file is the scheduler (queue, leases, heartbeat, the recovery sweep, which first mends what
// stopped processes left behind: leftovers.ts); each kind of task runs from its own file
// (task-kinds.ts), the interoperable import's one sequence in api-import.ts.

const LEASE_SECONDS = 10;
const HEARTBEAT_MS = 2000;
const RECOVERY_MS = 5000;
const MAX_ATTEMPTS = 3;
/** How long a stopping service waits for its running tasks to see the stop (and give their attempt back). */
const STOP_WAIT_MS = 5000;

export class ImportRunner implements ImportEngine {
  /** Task id → its image and abort switch, for the tasks this process runs. */
  private readonly running = new Map<string, { imageId: string | null; controller: AbortController }>();
  /** The runs under way (they end soon after a stop aborts them). */
  private readonly executing = new Set<Promise<void>>();
  private readonly callers = new Map<string, CallerCredentials>();
  private readonly queue: TaskRow[] = [];
  private recoveryTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private stopped = false;
  private readonly finish: FinishDeps;

  /** `createImage` makes the image of a legacy `import` task (the image service lives above the engine). */
  constructor(
    private readonly deps: ImportDeps,
    private readonly staging: StagingArea,
    private readonly opts: EngineOptions,
    private readonly createImage: CreateImage,
  ) {
    this.finish = { deps, staging, taskTimeToLiveHours: opts.taskTimeToLiveHours };
  }

  private leaseUntil(): string {
    return addSeconds(nowTimestamp(), LEASE_SECONDS);
  }

  private holdLease(taskId: string): Promise<boolean> {
    return this.deps.tasks.claim(taskId, this.opts.nodeId, this.leaseUntil());
  }

  newTask(fields: NewTask): TaskRow {
    const now = nowTimestamp();
    return {
      ...fields,
      id: crypto.randomUUID(),
      status: 'pending',
      result: null,
      message: '',
      expires_at: null,
      created_at: now,
      updated_at: now,
      deleted_at: null,
      deleted: 0,
      lease_owner: this.opts.nodeId,
      lease_expires_at: this.leaseUntil(),
      attempts: 0,
    };
  }

  failUnfinished(task: TaskRow, reason: string): Promise<boolean> {
    return failUnfinished(this.finish, task, reason);
  }

  isWorkedOn(task: TaskRow): boolean {
    return task.status === 'processing' && task.lease_expires_at !== null && task.lease_expires_at > nowTimestamp();
  }

  /** Starts the recovery sweep: now, and then periodically. */
  start(): void {
    void this.recover();
    // A pass still running (a slow database) is not joined by another: they would queue one task twice.
    this.recoveryTimer = setInterval(() => void (this.sweeping ?? this.recover()), RECOVERY_MS);
    this.recoveryTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    // Work in progress is left to the lease: another process (or this one after a restart) resumes it.
    for (const { controller } of this.running.values()) controller.abort(new HandedOn('service stopping'));
    await Promise.race([Promise.allSettled([...this.executing]), new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }

  submit(task: TaskRow, caller?: CallerCredentials): void {
    if (caller) this.callers.set(task.id, caller);
    this.queue.push(task);
    this.pump();
  }

  async cancelPending(task: TaskRow, reason: string): Promise<boolean> {
    if (!(await failUnstarted(this.finish, revertOf(task), task, reason))) return false;
    const queued = this.queue.findIndex((t) => t.id === task.id);
    if (queued >= 0) this.queue.splice(queued, 1);
    return true;
  }

  cancel(imageId: string, reason: string): void {
    for (const { imageId: taskImage, controller } of this.running.values()) {
      if (taskImage === imageId) controller.abort(new ImportStopped(reason));
    }
  }

  async discardStaged(imageId: string): Promise<void> {
    await this.staging.remove(imageId);
  }

  async remoteImageSize(caller: CallerCredentials, method: Record<string, unknown>): Promise<number | null> {
    try {
      const { regionEndpoints } = this.opts.glanceDownload;
      const endpoint = remoteEndpoint(caller.catalog, regionEndpoints, String(method.glance_region), String(method.glance_service_interface ?? 'public'));
      const remote = await fetchRemoteImage(
        endpoint,
        String(method.glance_image_id),
        caller.token,
        this.opts.download,
        AbortSignal.timeout(this.opts.download.readTimeoutMs),
      );
      return remote.size;
    } catch {
      return null;
    }
  }

  /** Tasks waiting for a free slot here, and tasks this process holds the lease of (for metrics). */
  get load(): { queued: number; running: number } {
    return { queued: this.queue.length, running: this.running.size };
  }

  private pump(): void {
    while (!this.stopped && this.queue.length && this.running.size < this.opts.concurrency) {
      const task = this.queue.shift()!;
      const run = this.execute(task);
      this.executing.add(run);
      void run.finally(() => this.executing.delete(run));
    }
  }

  /** Unfinished tasks nobody holds: resume them (a few times) or fail them cleanly. One pass at a time. */
  async recover(): Promise<void> {
    while (this.sweeping) await this.sweeping;
    this.sweeping = this.sweep().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private async sweep(): Promise<void> {
    if (this.stopped) return;
    try {
      await mendLeftovers(this.finish);
      const nodeId = this.opts.nodeId;
      const candidates: Array<{ task: TaskRow; deadOwner: string | null }> = [
        ...(await this.deps.tasks.orphaned(50)).map((task) => ({ task, deadOwner: null })),
        // A holder on this host whose process is gone (killed, crashed) need not be waited for.
        ...(await this.deps.tasks.heldWithPrefix(`${hostname()}:`, 50))
          .filter((task) => task.lease_owner !== nodeId && nodeGone(task.lease_owner!))
          .map((task) => ({ task, deadOwner: task.lease_owner })),
      ];
      for (const { task, deadOwner } of candidates) {
        // One waiting here for a slot (its lease runs out meanwhile) is not queued a second time.
        if (this.running.has(task.id) || this.queue.some((queued) => queued.id === task.id)) continue;
        if (this.pinnedElsewhere(task)) continue;
        const claimed = deadOwner ? await this.deps.tasks.claimFrom(task.id, deadOwner, nodeId, this.leaseUntil()) : await this.holdLease(task.id);
        if (!claimed) continue;
        if (task.attempts >= MAX_ATTEMPTS) {
          await failAndRevert(this.finish, revertOf(task), task, 'Import was interrupted too many times (service restarts); giving up.');
          continue;
        }
        this.submit(task);
      }
    } catch (err) {
      this.deps.log.error({ err }, 'import recovery sweep failed');
    }
  }

  /**
   * A glance-direct whose data is in another node's own staging waits for that node (its restart
   * resumes it), as a finished stage waits for it: here it could only fail and lose the data.
   */
  private pinnedElsewhere(task: TaskRow): boolean {
    if (task.type !== 'api_image_import') return false;
    let stagedOn: string | undefined;
    try {
      stagedOn = parseImportInput(task.input).staged_on;
    } catch {
      return false; // its run fails it on the input, wherever it runs
    }
    return stagedOn !== undefined && stagedOn !== this.opts.selfUrl;
  }

  private async execute(task: TaskRow): Promise<void> {
    const started = performance.now();
    const method = methodOf(task);
    let outcome = 'handed_on';
    const controller = new AbortController();
    this.running.set(task.id, { imageId: task.image_id, controller });
    const heartbeat = setInterval(() => void this.beat(task, controller), HEARTBEAT_MS);
    heartbeat.unref();
    try {
      if (!(await this.holdLease(task.id))) return;
      // Ended while it waited (a cancel): whoever ended it has reverted it.
      if (!(await this.deps.tasks.transition(task.id, ['pending', 'processing'], { status: 'processing', attempts: task.attempts + 1 }))) return;
      await notifyTask(this.deps, 'task.processing', task.id);
      const job = {
        deps: this.deps,
        staging: this.staging,
        opts: this.opts,
        task,
        signal: controller.signal,
        caller: this.callers.get(task.id),
        keepLease: async () => {
          if (!(await this.holdLease(task.id))) throw await this.whyLeaseLost(task.id);
        },
        finish: this.finish,
        createImage: this.createImage,
        trackImage: (imageId: string) => this.running.set(task.id, { imageId, controller }),
      };
      const kind = kindOf(task);
      if (!kind) throw new ImportStopped(`Tasks of type ${task.type} are not supported.`);
      await kind.run(job);
      outcome = 'success';
      // Glance's task.run comes once its run has returned, with the task as its API process saw it.
      this.deps.notifier.info('task.run', taskPayload(task));
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      if (reason instanceof HandedOn) {
        // A stop of the service is no fault of the task's: it does not count towards MAX_ATTEMPTS,
        // which is there for a task that takes its process down (a rolling restart would fail imports).
        if (this.stopped) await this.deps.tasks.transition(task.id, ['processing'], { attempts: task.attempts }).catch(() => {});
        return;
      }
      outcome = 'failure';
      const log = this.deps.log.child({ task: task.id, image: task.image_id });
      await failAndRevert(this.finish, revertOf(task), task, describeFailure(reason, log)).catch((e) => log.error({ err: e }, 'could not fail the task'));
    } finally {
      const labels = { method, outcome };
      this.opts.metrics?.importTasks.inc(labels);
      this.opts.metrics?.importSeconds.observe(labels, (performance.now() - started) / 1000);
      clearInterval(heartbeat);
      this.running.delete(task.id);
      this.callers.delete(task.id);
      this.pump();
    }
  }

  /**
   * A refused renewal: another process took the task over (it goes on there; nothing is undone here), or
   * the task was ended meanwhile (a cancel, a stale lock taken over), which this process then reverts.
   */
  private async whyLeaseLost(taskId: string): Promise<Error> {
    const row = await this.deps.tasks.getRaw(taskId);
    const live = row && (row.status === 'processing' || row.status === 'pending');
    return live ? new HandedOn('the lease was taken over by another process') : new ImportStopped(row?.message || 'The import task was stopped.');
  }

  /** Renews the lease; aborts when the task was cancelled or failed elsewhere, or the image was deleted. */
  private async beat(task: TaskRow, controller: AbortController): Promise<void> {
    try {
      // One write when all is well; only a refused renewal is looked into.
      if (!(await this.holdLease(task.id))) {
        controller.abort(await this.whyLeaseLost(task.id));
        return;
      }
      const imageId = this.running.get(task.id)?.imageId ?? task.image_id;
      if (imageId && !(await this.deps.images.get(imageId))) controller.abort(new ImageGone(imageId));
    } catch {
      /* a missed beat is harmless; the lease is long enough for the next */
    }
  }
}
