import type { IncomingMessage, Server, ServerResponse } from 'node:http';

// Glance's server (eventlet) sends `100 Continue` only when the application first reads the body: an
// answer given before that (a refusal of an upload) goes out without it, on a connection then closed,
// and the client sends no body at all. Node would send it as soon as the headers arrived.

const AWAITING = Symbol('waits for 100 Continue');
type Awaiting = IncomingMessage & { [AWAITING]?: boolean };

export function continueOnFirstRead(server: Server): void {
  server.on('checkContinue', (req: Awaiting, res: ServerResponse) => {
    req[AWAITING] = true;
    const read = req._read.bind(req);
    req._read = (size: number) => {
      if (req[AWAITING]) {
        req[AWAITING] = false;
        if (!res.headersSent) res.writeContinue();
      }
      read(size);
    };
    server.emit('request', req, res);
  });
}

/** Whether the client still waits for `100 Continue`: it has sent no body, and its connection closes after the answer. */
export function awaitingContinue(req: IncomingMessage): boolean {
  return (req as Awaiting)[AWAITING] === true;
}
