import type { FastifyInstance } from 'fastify';

/**
 * An answer (a download) whose client reads nothing of it for `idleMs` (client_socket_timeout) is given
 * up and its connection closed, as the socket timeout of Glance's server does with every send: else a
 * stalled client would hold the answer's buffers and its file for ever. 0: never.
 */
export function giveUpUnreadAnswers(app: FastifyInstance, idleMs: number): void {
  if (idleMs <= 0) return;
  app.addHook('onSend', async (_request, reply, payload) => {
    const socket = reply.raw.socket;
    reply.raw.setTimeout(idleMs, () => reply.raw.destroy());
    // Node gives a finished answer's socket its keep-alive timeout, but not while a pipelined request
    // waits on it: that one's handler must not inherit this timeout.
    reply.raw.once('finish', () => {
      if (socket && !socket.destroyed && socket.timeout === idleMs) socket.setTimeout(0);
    });
    return payload;
  });
}
