// A loopback HTTP proxy in front of a real server, for faults a real server does not make on demand: it
// records every request it forwards, and can break off the next GET answers after some bytes of their
// body, as a connection that dies mid-transfer.

import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForwardedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface CuttingProxy {
  /** http://127.0.0.1:port */
  url: string;
  /** Every request forwarded so far, in order. */
  requests: ForwardedRequest[];
  /** Breaks off the body of the next `count` GET answers (of paths matching `path`) after `afterBytes` bytes. */
  cutGets(count: number, afterBytes: number, path?: RegExp): void;
  close(): Promise<void>;
}

export async function startCuttingProxy(target: string): Promise<CuttingProxy> {
  const upstream = new URL(target);
  const requests: ForwardedRequest[] = [];
  let cuts = { left: 0, afterBytes: 0, path: /./ };
  const server = createServer((req, res) => {
    const forwarded = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    requests.push(forwarded);
    const cut = forwarded.method === 'GET' && cuts.left > 0 && cuts.path.test(forwarded.path);
    if (cut) cuts.left--;
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: forwarded.method, path: forwarded.path, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!cut) {
          answer.pipe(res);
          return;
        }
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= cuts.afterBytes) return;
          const part = chunk.subarray(0, cuts.afterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= cuts.afterBytes) {
            answer.destroy();
            // Let the bytes written so far go out, then drop the connection mid-body.
            res.once('drain', () => res.socket?.destroy());
            setTimeout(() => res.socket?.destroy(), 20);
          }
        });
      },
    );
    out.on('error', () => res.socket?.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    cutGets: (count, afterBytes, path = /./) => {
      cuts = { left: count, afterBytes, path };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
