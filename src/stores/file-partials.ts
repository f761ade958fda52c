import { processTag } from '../util/process.ts';

// The names of a file store's temporary files: which key a write was for and which process wrote it.

const PARTIAL = '.partial-';

/** A write's temp file: `.partial-<key>-<process tag>-<time>` (the key may hold dashes; the tag and time do not). */
export function partialName(key: string): string {
  return `${PARTIAL}${key}-${processTag()}-${Date.now()}`;
}

/** The key and writer a temp file's name gives; null for any other name. */
export function parsePartialName(name: string): { key: string; writer: string } | null {
  if (!name.startsWith(PARTIAL)) return null;
  return { key: name.slice(PARTIAL.length).split('-').slice(0, -2).join('-'), writer: name.split('-').at(-2) ?? '' };
}

export interface TempFile {
  file: string;
  key: string;
  /** The process tag of the writer. */
  writer: string;
}
