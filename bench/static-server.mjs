// A bare node:http file server, the bench's reference for what Node itself can send: GET (and Range) of
// the files in one directory, read in 1 MiB pieces and piped to the socket. It also serves web-download
// sources. A PUT is only counted and answered 204: what receiving an upload costs Node with no other work.
// Runs as its own process so that it does not share the bench's event loop.
//   node bench/static-server.mjs DIR     -> prints the port it listens on (127.0.0.1)

import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';

const dir = path.resolve(process.argv[2]);
const server = createServer((req, res) => {
  if (req.method === 'PUT') {
    let received = 0;
    req.on('data', (chunk) => (received += chunk.length));
    req.on('end', () => res.writeHead(204, { 'x-received-bytes': received }).end());
    return;
  }
  const name = decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1));
  const file = path.join(dir, name);
  let size;
  try {
    if (path.dirname(file) !== dir) throw new Error('outside');
    size = statSync(file).size;
  } catch {
    res.writeHead(404).end();
    return;
  }
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const end = m && m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  res.writeHead(m ? 206 : 200, {
    'content-type': 'application/octet-stream',
    'content-length': end - start + 1,
    ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file, { start, end, highWaterMark: 1 << 20 }).pipe(res);
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
