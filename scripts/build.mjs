#!/usr/bin/env node
// Bundles the service into dist/ (one ES module plus the hash worker) so that `gaze serve` runs plain
// JavaScript: no TypeScript loader thread in the served process, about a third less memory at rest.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/cli.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outfile: 'dist/cli.mjs',
  sourcemap: true,
  logLevel: 'warning',
});
copyFileSync('src/ingest/hash-worker.mjs', 'dist/hash-worker.mjs');
writeFileSync('dist/BUILT', `${new Date().toISOString()}\n`);
