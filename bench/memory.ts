// Memory and CPU time of another process from /proc/<pid>/ (Linux): VmRSS now, VmHWM (peak RSS so far).

import { readFileSync } from 'node:fs';

export interface MemoryStatus {
  rssKiB: number;
  hwmKiB: number;
}

export function readMemory(pid: number): MemoryStatus | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => Number(/^(\w+):\s+(\d+) kB$/m.exec(text.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? NaN);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** Samples VmRSS every `intervalMs` until stopped; `stop()` returns the samples' peak and the final VmHWM. */
export function sampleMemory(pid: number, intervalMs = 100): { stop(): { peakRssKiB: number; hwmKiB: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const take = () => {
    const m = readMemory(pid);
    if (!m) return;
    samples++;
    if (m.rssKiB > peak) peak = m.rssKiB;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peakRssKiB: peak, hwmKiB: readMemory(pid)?.hwmKiB ?? NaN, samples };
    },
  };
}

/** CPU seconds (user + system, all threads) another process has used so far, from /proc/<pid>/stat. */
export function readCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}
