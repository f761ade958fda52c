// Hash worker: keeps one digest per job and feeds it from shared buffers the main thread fills.
// Plain JavaScript so that it loads in a worker without the TypeScript loader.
import { parentPort } from 'node:worker_threads';
import { createHash } from 'node:crypto';

const jobs = new Map();

parentPort.on('message', (msg) => {
  switch (msg.op) {
    case 'start':
      jobs.set(msg.job, createHash(msg.algo));
      break;
    case 'update': {
      const hash = jobs.get(msg.job);
      if (hash) hash.update(new Uint8Array(msg.buffer, 0, msg.length));
      parentPort.postMessage({ op: 'ack', job: msg.job, slot: msg.slot });
      break;
    }
    case 'digest': {
      const hash = jobs.get(msg.job);
      jobs.delete(msg.job);
      parentPort.postMessage({ op: 'digest', job: msg.job, hex: hash ? hash.digest('hex') : null });
      break;
    }
    case 'abort':
      jobs.delete(msg.job);
      break;
  }
});
