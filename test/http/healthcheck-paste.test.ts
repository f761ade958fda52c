// oslo.middleware's healthcheck takes its paste filter's disable_by_file_path over the [healthcheck]
// option: with Debian's glance-api-paste.ini read as configuration, its file is the one that counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

test("the paste pipeline's [filter:healthcheck] disable_by_file_path wins over [healthcheck]'s", async () => {
  const gaze = await startGazeInProcess({
    healthcheck: { disable_by_file_path: '__DIR__/from-option' },
    'filter:healthcheck': { paste: 'egg:oslo.middleware#healthcheck', disable_by_file_path: '__DIR__/from-paste' },
  });
  try {
    const api = client(gaze.url);
    writeFileSync(path.join(gaze.dir, 'from-option'), '');
    assert.equal((await api.get('/healthcheck')).text, 'OK');
    writeFileSync(path.join(gaze.dir, 'from-paste'), '');
    const disabled = await api.get('/healthcheck');
    assert.equal(disabled.status, 503);
    assert.equal(disabled.text, 'DISABLED BY FILE');
    rmSync(path.join(gaze.dir, 'from-paste'));
    assert.equal((await api.get('/healthcheck')).status, 200);
  } finally {
    await gaze.stop();
  }
});
