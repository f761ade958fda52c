// [DEFAULT] http_keepalive: Glance's server keeps connections open by default; with False every answer
// says `Connection: close` and the connection ends, downloads included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

/** One GET on a keep-alive agent: the Connection header and whether the server closed the socket. */
function get(url: string): Promise<{ status: number; connection: string | undefined; closedByServer: boolean }> {
  const agent = new Agent({ keepAlive: true });
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        // A closed socket is gone within a tick or two; a kept one stays in the agent's free list.
        setTimeout(() => {
          const closedByServer = req.socket?.destroyed ?? true;
          agent.destroy();
          resolve({ status: res.statusCode!, connection: res.headers.connection, closedByServer });
        }, 100);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('http_keepalive: kept by default; with False each answer closes its connection', async () => {
  const kept = await startGazeInProcess();
  const closing = await startGazeInProcess({ DEFAULT: { http_keepalive: 'False' } });
  try {
    const image = await client(closing.url).createImage({ name: 'k' });
    assert.equal((await client(closing.url).upload(image.id, 'some bytes')).status, 204);
    const byDefault = await get(`${kept.url}/v2/images`);
    assert.equal(byDefault.status, 200);
    assert.equal(byDefault.connection, 'keep-alive');
    assert.equal(byDefault.closedByServer, false);
    for (const path of ['/v2/images', `/v2/images/${image.id}/file`, '/v2/images/nonexistent']) {
      const answer = await get(`${closing.url}${path}`);
      assert.equal(answer.connection, 'close', path);
      assert.equal(answer.closedByServer, true, path);
    }
  } finally {
    await kept.stop();
    await closing.stop();
  }
});
