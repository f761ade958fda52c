import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** Whether a process of this host with that pid is running (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (killed, not yet reaped by its parent) answers signal 0 but runs no more.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The state follows the name in parentheses, which may itself hold ") Z ".
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
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
 * The process-id namespace this process sees pids in. Containers that share a host name (host
 * networking, or replicas given one name) share the boot but not the pids: a pid of another namespace
 * cannot be probed from here, and would look dead.
 */
const PID_NAMESPACE = (() => {
  try {
    return /\d+/.exec(readlinkSync('/proc/self/ns/pid'))?.[0] ?? 'unknown-pid-namespace';
  } catch {
    return 'unknown-pid-namespace';
  }
})();

/**
 * This process's name among the nodes sharing one database: `host:pid:boot:pidns:random`. Host, pid,
 * boot and pid namespace let a neighbour in the same host and namespace see that it is gone; the random
 * part tells apart the processes a pid stood for.
 */
export function nodeName(): string {
  return `${hostname()}:${process.pid}:${BOOT_ID}:${PID_NAMESPACE}:${crypto.randomUUID()}`;
}

/**
 * Whether the node of that name is known to be gone: it ran on this host, and the host has rebooted
 * since or its process (of this pid namespace) no longer runs. A node of another host, or of another pid
 * namespace of this one, cannot be probed from here (false): it is judged by its row and leases alone.
 */
export function nodeGone(name: string): boolean {
  const [host, pid, ...rest] = name.split(':');
  if (host !== hostname()) return false;
  // Older nodes' names: `host:pid:boot:random`, and before them `host:pid:random`.
  const boot = rest.length > 1 ? rest[0] : undefined;
  if (boot !== undefined && boot !== BOOT_ID) return true;
  const pidNamespace = rest.length > 2 ? rest[1] : undefined;
  if (pidNamespace !== undefined && pidNamespace !== PID_NAMESPACE) return false;
  return !processAlive(Number(pid));
}

const HOST_TAG = createHash('sha256').update(`${hostname()}/${BOOT_ID}/${PID_NAMESPACE}`).digest('hex').slice(0, 8);

/** `pid.host` (the host, boot and pid namespace as a short hash): names a temporary file that nodes of other hosts may see. */
export function processTag(): string {
  return `${process.pid}.${HOST_TAG}`;
}

/**
 * Whether the tag names another process of this host (and boot and pid namespace) that is running: its
 * work is its own while it pauses. (A pid may have been reused since by an unrelated process: callers
 * bound how long they believe it.)
 */
export function processTagRunsBeside(tag: string): boolean {
  const [pid, host] = tag.split('.');
  // An older tag without its host part says too little to keep a file for.
  return host === HOST_TAG && Number(pid) !== process.pid && processAlive(Number(pid));
}

/** Whether the process a tag names is known to be gone; a tag without its host part is of this host. */
export function processTagGone(tag: string): boolean {
  const [pid, host] = tag.split('.');
  return (host === undefined || host === HOST_TAG) && !processAlive(Number(pid));
}
