import type { NodesRepo } from '../db/repos/nodes.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { nodeGone } from '../util/process.ts';
import type { Logger } from '../util/logger.ts';

/** How often a node renews its row, and how long one renewal vouches for it (several missed renewals). */
const NODE_BEAT_SECONDS = 30;
const NODE_ALIVE_SECONDS = 180;
/** Rows of nodes gone this long are dropped: every node has long since recovered their uploads. */
const FORGET_AFTER_SECONDS = 7 * 24 * 3600;

export interface LivenessTiming {
  beatMs: number;
  aliveSeconds: number;
}

/**
 * Whether the nodes sharing the database still run. Each node renews a row of its own; a node of
 * another host is gone once it stopped renewing (a host that died for good never restarts to recover
 * its own uploads, so the others must). Rows compare times written by different hosts, all on the
 * database server's clock (db/clock.ts), as the task leases are.
 */
export class NodeLiveness {
  private beatTimer: NodeJS.Timeout | null = null;
  private passTimer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private passing: Promise<void> | null = null;
  private lastBeatAt = -Infinity;

  constructor(
    private readonly nodes: NodesRepo,
    private readonly self: string,
    private readonly log: Logger,
    private readonly timing: LivenessTiming = { beatMs: NODE_BEAT_SECONDS * 1000, aliveSeconds: NODE_ALIVE_SECONDS },
  ) {}

  async beat(): Promise<void> {
    await this.nodes.beat(this.self, addSeconds(nowTimestamp(), this.timing.aliveSeconds));
    this.lastBeatAt = Date.now();
  }

  /**
   * The writers among `names` known to be gone: those whose row expired and, with `probeProcesses` (at
   * a node's start), the dead processes of this host, row or not. The probe is left out of the passes
   * made while running: processes that share a host name without sharing a pid space (containers)
   * would look dead to each other, and a restarted node probes its own host at start anyway.
   */
  async goneAmong(names: string[], probeProcesses: boolean): Promise<Set<string>> {
    const distinct = [...new Set(names)];
    const probedGone = probeProcesses ? distinct.filter((name) => nodeGone(name)) : [];
    const expired = await this.nodes.expiredAmong(distinct.filter((name) => !probedGone.includes(name)));
    return new Set([...probedGone, ...expired]);
  }

  /**
   * Renews this node's row on its own timer, and runs `pass` (the recovery of other nodes' uploads) on
   * another: a slow pass never delays a renewal, and a node that cannot renew (its database out of
   * reach) makes no pass, since the others may be judging it gone by then.
   */
  start(pass: () => Promise<void>): void {
    this.beatTimer = setInterval(() => {
      this.beating ??= this.renew().finally(() => {
        this.beating = null;
      });
    }, this.timing.beatMs);
    this.passTimer = setInterval(() => {
      if (Date.now() - this.lastBeatAt > (this.timing.aliveSeconds * 1000) / 2) return;
      this.passing ??= pass()
        .catch((err: unknown) => this.log.error({ err }, 'recovering the uploads of stopped nodes failed'))
        .finally(() => {
          this.passing = null;
        });
    }, this.timing.beatMs);
    this.beatTimer.unref();
    this.passTimer.unref();
  }

  /** Stops both timers and marks this node's row expired: what it leaves behind is recovered at once. */
  async stop(): Promise<void> {
    for (const timer of [this.beatTimer, this.passTimer]) if (timer) clearInterval(timer);
    this.beatTimer = this.passTimer = null;
    await Promise.all([this.beating, this.passing]);
    await this.nodes.beat(this.self, addSeconds(nowTimestamp(), -1)).catch((err: unknown) => this.log.error({ err }, 'marking this node stopped failed'));
  }

  private async renew(): Promise<void> {
    try {
      await this.beat();
      await this.nodes.forgetExpiredBefore(addSeconds(nowTimestamp(), -FORGET_AFTER_SECONDS));
    } catch (err) {
      this.log.error({ err }, 'renewing this node in the database failed');
    }
  }
}
