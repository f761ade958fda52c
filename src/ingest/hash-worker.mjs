// Hash worker: keeps the digests of each job (md5 and sha512, say) and feeds them from the buffers the
// main thread fills and transfers here; each goes back with its acknowledgement.
// Plain JavaScript so that it loads in a worker without the TypeScript loader.
import { parentPort } from 'node:worker_threads';
import { createHash } from 'node:crypto';

const jobs = new Map();

parentPort.on('message', (msg) => {
  switch (msg.op) {
    case 'start':
      jobs.set(
        msg.job,
        msg.algos.map((algo) => createHash(algo)),
      );
      break;
    case 'update': {
      const hashes = jobs.get(msg.job);
      const bytes = new Uint8Array(msg.buffer, 0, msg.length);
      for (const hash of hashes ?? []) hash.update(bytes);
      parentPort.postMessage({ op: 'ack', job: msg.job, slot: msg.slot, buffer: msg.buffer }, [msg.buffer]);
      break;
    }
    case 'digest': {
      const hashes = jobs.get(msg.job);
      jobs.delete(msg.job);
      parentPort.postMessage({ op: 'digest', job: msg.job, hex: hashes ? hashes.map((hash) => hash.digest('hex')) : null });
      break;
    }
    case 'abort':
      jobs.delete(msg.job);
      break;
  }
});
