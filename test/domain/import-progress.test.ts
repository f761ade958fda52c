import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAILED_IMPORT, IMPORTING_TO_STORES, storeProgress } from '../../src/domain/import-progress.ts';

test('store progress: stores start, finish and fail, sorted and comma-joined as Glance shows them', () => {
  let props: Record<string, string> = { [FAILED_IMPORT]: 'slow,fast' };
  const step = (change: Parameters<typeof storeProgress>[1]) => (props = { ...props, ...storeProgress(props, change) });
  step({ importing: ['slow', 'cheap', 'fast'], clearFailed: ['fast'] });
  assert.deepEqual(props, { [IMPORTING_TO_STORES]: 'cheap,fast,slow', [FAILED_IMPORT]: 'slow' });
  step({ done: 'fast' });
  assert.equal(props[IMPORTING_TO_STORES], 'cheap,slow');
  step({ failed: ['slow', 'cheap'] });
  assert.deepEqual(props, { [IMPORTING_TO_STORES]: '', [FAILED_IMPORT]: 'cheap,slow' });
});

test('store progress of an image that never imported: both properties empty', () => {
  assert.deepEqual(storeProgress({ other: 'x' }, {}), { [IMPORTING_TO_STORES]: '', [FAILED_IMPORT]: '' });
});
