import type { SwiftContainers } from './swift-containers.ts';
import type { KeepKey } from './driver.ts';

// Segments are named `<key>/<write>/<n>`, the write being `<start time in base 36>-<random>`.

/** The name part of one write's segments; its start time can be read back from it. */
export function newWriteId(now = Date.now()): string {
  return `${now.toString(36)}-${crypto.randomUUID().slice(0, 12)}`;
}

/**
 * The segments of writes that died (a process killed mid-write never deletes them), grouped by write.
 * A write is left alone when `keep` says so (an image being written, staged, imported or copied, by
 * any node), when it began less than `minAgeMs` ago, and when the object at its key is made of it.
 * `whole` remembers the writes found to make an object, so that each object's manifest is read once.
 */
export async function orphanedSegments(containers: SwiftContainers, keep: KeepKey, minAgeMs: number, whole: Set<string>): Promise<string[][]> {
  const writes = new Map<string, { key: string; write: string; names: string[] }>();
  for (const name of await containers.names(containers.segmentContainer)) {
    const [key, write, n, ...rest] = name.split('/');
    if (!key || !write || !n || rest.length) continue; // not one of ours
    const prefix = `${key}/${write}/`;
    let found = writes.get(prefix);
    if (!found) writes.set(prefix, (found = { key, write, names: [] }));
    found.names.push(name);
  }
  const orphans: string[][] = [];
  for (const [prefix, { key, write, names }] of writes) {
    const started = parseInt(write.split('-')[0]!, 36);
    if (whole.has(prefix) || !Number.isFinite(started) || Date.now() - started < minAgeMs || (await keep(key))) continue;
    if ((await containers.oldSegments(key)).some((name) => name.startsWith(prefix))) {
      whole.add(prefix);
      continue;
    }
    orphans.push(names);
  }
  return orphans;
}
