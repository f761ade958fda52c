import type { NodesRepo } from '../db/repos/nodes.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { nodeGone } from '../util/process.ts';
import type { Logger } from '../util/logger.ts';

/** How often a node renews its row, and how long one renewal vouches for it (a few missed renewals). */
export const NODE_BEAT_SECONDS = 30;
export const NODE_ALIVE_SECONDS = 180;
/** Rows of nodes gone this long are dropped: every node has long since recovered their uploads. */
const FORGET_AFTER_SECONDS = 7 * 24 * 3600;

/**
 * Whether the nodes sharing the database still run. A process of this host is probed directly; a node
 * of another host is gone once it stopped renewing its row (a host that died for good never restarts
 * to recover its own uploads, so the others must).
 */
export class NodeLiveness {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly nodes: NodesRepo,
    private readonly self: string,
    private readonly log: Logger,
  ) {}

  async beat(): Promise<void> {
    await this.nodes.beat(this.self, addSeconds(nowTimestamp(), NODE_ALIVE_SECONDS));
  }

  /** The writers among `names` known to be gone. */
  async goneAmong(names: string[]): Promise<Set<string>> {
    const distinct = [...new Set(names)];
    const probedGone = distinct.filter((name) => nodeGone(name));
    const expired = await this.nodes.expiredAmong(distinct.filter((name) => !probedGone.includes(name)));
    return new Set([...probedGone, ...expired]);
  }

  /** Renews this node's row every `everyMs` and then runs `afterBeat` (the recovery of other nodes' uploads). */
  start(afterBeat: () => Promise<void>, everyMs = NODE_BEAT_SECONDS * 1000): void {
    const tick = async () => {
      try {
        await this.beat();
        await this.nodes.forgetExpiredBefore(addSeconds(nowTimestamp(), -FORGET_AFTER_SECONDS));
        await afterBeat();
      } catch (err) {
        this.log.error({ err }, 'renewing this node or recovering the uploads of stopped nodes failed');
      }
    };
    this.timer = setInterval(() => {
      this.running ??= tick().finally(() => {
        this.running = null;
      });
    }, everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
