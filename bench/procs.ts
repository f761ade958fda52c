// What processes cost, from /proc (Linux): a server's whole process tree (Glance's parent and its
// workers, Gaze and its hash workers' threads), and the CPU time that nobody in the bench accounts for,
// so that a measurement disturbed by another process can be thrown away.

import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ

function statFields(pid: number | 'self'): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), starting with the state (field 3).
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** `root` and every process descending from it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (!fields) continue;
    const parent = Number(fields[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU seconds (user + system, all threads) the processes have used so far. */
export function cpuSecondsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** The bench's own CPU seconds, with those of its reaped children (curl, the static file server's runs). */
export function benchCpuSeconds(): number {
  const f = statFields('self')!;
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND;
}

/** Busy CPU seconds of the whole machine (all cores) so far. */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND;
}

/** Resident memory of the processes now, in KiB. */
export function rssKiBOf(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kib;
}

/** Samples a process tree's total RSS every `intervalMs`; stop() returns the peak in MiB. */
export function samplePeakRss(root: number, intervalMs = 100): { stop(): number } {
  let peak = 0;
  const take = () => {
    peak = Math.max(peak, rssKiBOf(processTree(root)));
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak / 1024;
    },
  };
}

/** The watched servers' CPU seconds, the others' average cores, and the seconds elapsed. */
export interface Usage {
  serverCpuSeconds: number;
  otherCores: number;
  seconds: number;
}

export interface Watch {
  stop(): Usage;
}

/**
 * Watches a measurement: CPU used by the server tree under test, and by anything that is neither that
 * server, the parts it relies on (its database, Keystone), nor the bench (with its curl children).
 * Kernel threads count as others too.
 */
export function watch(serverRoots: number[], partRoots: number[] = []): Watch {
  const pids = () => serverRoots.flatMap(processTree);
  const partPids = () => partRoots.flatMap(processTree);
  const started = performance.now();
  const server0 = cpuSecondsOf(pids());
  const parts0 = cpuSecondsOf(partPids());
  const bench0 = benchCpuSeconds();
  const busy0 = machineBusySeconds();
  return {
    stop() {
      const seconds = (performance.now() - started) / 1000;
      const serverCpuSeconds = cpuSecondsOf(pids()) - server0;
      const accounted = serverCpuSeconds + (cpuSecondsOf(partPids()) - parts0) + (benchCpuSeconds() - bench0);
      const other = machineBusySeconds() - busy0 - accounted;
      return { serverCpuSeconds, otherCores: Math.max(0, other) / seconds, seconds };
    },
  };
}

/** Average cores busy on the machine over `ms`, whoever used them (the bench should be idle then). */
export async function machineLoad(ms = 1000): Promise<number> {
  const busy0 = machineBusySeconds();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return (machineBusySeconds() - busy0) / (ms / 1000);
}
