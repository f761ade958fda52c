import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Whether a process of this host with that pid is running (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This boot of this host: a pid seen before a reboot is not the process running under it now. */
const BOOT_ID = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
})();

/**
 * This process's name among the nodes sharing one database: `host:pid:boot:random`. Host, pid and boot
 * let a neighbour on the same host see that it is gone; the random part tells apart the processes a
 * pid stood for.
 */
export function nodeName(): string {
  return `${hostname()}:${process.pid}:${BOOT_ID}:${crypto.randomUUID()}`;
}

/**
 * Whether the node of that name is known to be gone: it ran on this host, and the host has rebooted
 * since or its process no longer runs. A node of another host cannot be probed from here (false): that
 * host's own next start recovers what its dead processes left.
 */
export function nodeGone(name: string): boolean {
  const [host, pid, ...rest] = name.split(':');
  if (host !== hostname()) return false;
  const boot = rest.length > 1 ? rest[0] : undefined; // names of `host:pid:random` (older nodes) carry none
  return (boot !== undefined && boot !== BOOT_ID) || !processAlive(Number(pid));
}

const HOST_TAG = createHash('sha256').update(`${hostname()}/${BOOT_ID}`).digest('hex').slice(0, 8);

/** `pid.host` (the host and boot as a short hash): names a temporary file that nodes of other hosts may see. */
export function processTag(): string {
  return `${process.pid}.${HOST_TAG}`;
}

/** Whether the process a tag names is known to be gone; a tag without its host part is of this host. */
export function processTagGone(tag: string): boolean {
  const [pid, host] = tag.split('.');
  return (host === undefined || host === HOST_TAG) && !processAlive(Number(pid));
}
