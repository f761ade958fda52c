#!/usr/bin/env node
// Runs the TypeScript sources directly: one code path for the service, the tests and the benchmarks.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
