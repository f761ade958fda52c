// A loopback HTTP proxy in front of a real server, for faults a real server does not make on demand: it
// records every request it forwards, can break off the next GET answers after some bytes of their body,
// as a connection that dies mid-transfer, and can answer the next requests itself with an error, as a
// server that is briefly overloaded.

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
  /** Answers the next `count` requests of `method` (to paths matching `path`) with `status` and `body`, after reading their body. */
  refuse(count: number, method: string, path: RegExp, status: number, body: string): void;
  /**
   * Holds back the last byte of the next `count` request bodies of `method` (to paths matching `path`)
   * for `ms` after the client sent it, then sends it on even if the client has gone: a server that got
   * a whole body and finishes the request after its client stopped waiting.
   */
  holdBodyEnds(count: number, method: string, path: RegExp, ms: number): void;
  /** How many bodies are being held back now. */
  readonly holding: number;
  /** Resolves once every request forwarded so far has been answered upstream (or failed). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** `keepHost`: the request's own Host goes on (a signed request, as S3's, signs it). */
export async function startCuttingProxy(target: string, opts: { keepHost?: boolean } = {}): Promise<CuttingProxy> {
  const upstream = new URL(target);
  const requests: ForwardedRequest[] = [];
  let cuts = { left: 0, afterBytes: 0, path: /./ };
  let refusals = { left: 0, method: '', path: /./, status: 503, body: '' };
  let holds = { left: 0, method: '', path: /./, ms: 0 };
  let holding = 0;
  const upstreamDone: Promise<void>[] = [];
  const server = createServer((req, res) => {
    const forwarded = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    requests.push(forwarded);
    if (refusals.left > 0 && forwarded.method === refusals.method && refusals.path.test(forwarded.path)) {
      refusals.left--;
      const { status, body } = refusals;
      req.resume();
      req.once('end', () => res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body));
      return;
    }
    const cut = forwarded.method === 'GET' && cuts.left > 0 && cuts.path.test(forwarded.path);
    if (cut) cuts.left--;
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: forwarded.method,
        path: forwarded.path,
        headers: { ...req.headers, host: opts.keepHost ? req.headers.host : upstream.host },
      },
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
    upstreamDone.push(new Promise<void>((resolve) => out.once('close', resolve)));
    const hold = holds.left > 0 && forwarded.method === holds.method && holds.path.test(forwarded.path);
    if (!hold) {
      req.pipe(out);
      return;
    }
    holds.left--;
    const { ms } = holds;
    let last: Buffer | null = null;
    req.on('data', (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (last) out.write(last);
      out.write(chunk.subarray(0, chunk.length - 1));
      last = chunk.subarray(chunk.length - 1);
    });
    req.once('end', () => {
      holding++;
      setTimeout(() => {
        holding--;
        out.end(last ?? undefined);
      }, ms);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    cutGets: (count, afterBytes, path = /./) => {
      cuts = { left: count, afterBytes, path };
    },
    refuse: (count, method, path, status, body) => {
      refusals = { left: count, method, path, status, body };
    },
    holdBodyEnds: (count, method, path, ms) => {
      holds = { left: count, method, path, ms };
    },
    get holding() {
      return holding;
    },
    settled: async () => {
      await Promise.all(upstreamDone);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
