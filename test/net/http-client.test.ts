// The service's own HTTP client (Swift, other workers): a body framed by the connection's close is whole
// only when the connection ends cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { request } from '../../src/net/http-client.ts';

async function rawServer(answer: (socket: Socket) => void): Promise<{ url: string; close(): void }> {
  const server = createServer((socket) => {
    socket.once('data', () => answer(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, close: () => server.close() };
}

const UNFRAMED_HEAD = 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n';

test('a body without length or chunks that the connection ends cleanly is whole; one cut by a reset fails', async () => {
  const clean = await rawServer((socket) => socket.end(UNFRAMED_HEAD + 'x'.repeat(50_000)));
  const reset = await rawServer((socket) => {
    socket.write(UNFRAMED_HEAD + 'x'.repeat(50_000));
    setTimeout(() => socket.resetAndDestroy(), 50);
  });
  try {
    const whole = await request(clean.url);
    assert.equal((await whole.body.text()).length, 50_000);
    const cut = await request(reset.url);
    assert.equal(cut.statusCode, 200);
    await assert.rejects(cut.body.text(), (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET');
  } finally {
    clean.close();
    reset.close();
  }
});
