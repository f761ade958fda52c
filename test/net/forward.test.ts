// The replay of a request to the node holding an image's staged data: what goes along, and one hop only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { forwardToStageHost } from '../../src/net/forward.ts';
import { GazeError } from '../../src/domain/errors.ts';

test("the caller's token goes along whichever header it came in (keystonemiddleware takes X-Storage-Token too), with the one-hop mark", async () => {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(202, { 'x-openstack-request-id': 'req-stage-host' }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const stageHost = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const incoming = (headers: Record<string, string>) => ({ headers, url: '/v2/images/x/import', method: 'POST' }) as unknown as FastifyRequest;
    const forwarded = await forwardToStageHost(stageHost, incoming({ 'x-storage-token': 'tok-1', 'x-roles': 'member' }), { method: { name: 'glance-direct' } });
    assert.deepEqual(forwarded, { status: 202, requestId: 'req-stage-host' });
    assert.equal(seen[0]!['x-storage-token'], 'tok-1');
    assert.equal(seen[0]!['x-roles'], 'member');
    assert.equal(seen[0]!['x-gaze-forwarded'], '1');
    await assert.rejects(
      forwardToStageHost(stageHost, incoming({ 'x-auth-token': 'tok-2', 'x-gaze-forwarded': '1' }), undefined),
      (err: unknown) => err instanceof GazeError && err.code === 'STAGE_HOST_LOOP' && err.status === 502,
    );
    assert.equal(seen.length, 1, 'a forwarded request is not forwarded again');
  } finally {
    server.close();
  }
});
