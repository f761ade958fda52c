// Prometheus metrics of a real `gaze serve`: off by default, on their own address when enabled, counting
// requests by route pattern, bytes per store, imports by method and outcome; with several workers the
// supervisor adds up every worker's figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGazeProcess } from '../helpers/gaze.ts';
import { freePort } from '../helpers/keystone.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

/** The value of one series (`name{labels}`) in a Prometheus text page; 0 when absent. */
function sample(page: string, series: string): number {
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

test('metrics: requests by route pattern, bytes in and out of the store, imports by method and outcome, gauges', async () => {
  const metricsPort = await freePort();
  const gaze = await startGazeProcess({ metrics: { enabled: 'true', bind_port: String(metricsPort) } });
  try {
    const api = client(gaze.url);
    const data = randomBytes(1_000_000);
    const uploaded = await api.createImage({ name: 'counted' });
    assert.equal((await api.upload(uploaded.id, data)).status, 204);
    const r = await fetch(`${gaze.url}/v2/images/${uploaded.id}/file`);
    assert.equal((await r.arrayBuffer()).byteLength, data.length);
    const imported = await api.createImage({ name: 'imported' });
    assert.equal((await api.put(`/v2/images/${imported.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.post(`/v2/images/${imported.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    await until(async () => ((await api.get(`/v2/images/${imported.id}`)).json.status === 'active' ? true : undefined), 'the import');

    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      return res.text();
    };
    const page = await until(async () => {
      const text = await scrape();
      return sample(text, 'gaze_import_tasks_total{method="glance-direct",outcome="success"}') === 1 ? text : undefined;
    }, 'the import to be counted');
    assert.equal(sample(page, 'gaze_http_requests_total{method="GET",route="/v2/images/:id/file",status="200"}'), 1);
    assert.equal(sample(page, 'gaze_http_requests_total{method="PUT",route="/v2/images/:id/file",status="204"}'), 1);
    assert.equal(sample(page, 'gaze_http_requests_total{method="POST",route="/v2/images",status="201"}'), 2);
    assert.ok(sample(page, 'gaze_http_request_duration_seconds_count{method="GET",route="/v2/images/:id/file",status="200"}') === 1);
    assert.equal(sample(page, 'gaze_store_bytes_total{store="file",direction="in"}'), 2 * data.length, 'the upload and the import');
    assert.equal(sample(page, 'gaze_store_bytes_total{store="file",direction="out"}'), data.length);
    assert.equal(sample(page, 'gaze_import_queue_depth'), 0);
    assert.equal(sample(page, 'gaze_import_leases_held'), 0);
    assert.equal(sample(page, 'gaze_db_pool_connections{state="total"}'), 1);
    assert.match(page, /^gaze_process_cpu_seconds_total /m, "prom-client's process metrics");
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
    assert.notEqual((await fetch(`${gaze.url}/metrics`)).status, 200, 'never on the API address');
  } finally {
    await gaze.stop();
  }
});

test("metrics with workers = 2: the supervisor answers with both workers' requests added up; off by default", async () => {
  const metricsPort = await freePort();
  const gaze = await startGazeProcess({ DEFAULT: { workers: '2' }, metrics: { enabled: 'true', bind_port: String(metricsPort) } });
  try {
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200);
    // Every request was answered by one worker or the other; the supervisor's figure is their sum.
    const counted = await until(
      async () => {
        const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
        const n = res.status === 200 ? sample(await res.text(), 'gaze_http_requests_total{method="GET",route="/v2/images",status="200"}') : 0;
        return n === 20 ? n : undefined;
      },
      'the supervisor to count 20 requests',
      30_000,
    );
    assert.equal(counted, 20);
  } finally {
    await gaze.stop();
  }
  const quiet = await startGazeProcess({ metrics: { bind_port: String(metricsPort) } });
  try {
    await assert.rejects(fetch(`http://127.0.0.1:${metricsPort}/metrics`));
  } finally {
    await quiet.stop();
  }
});
