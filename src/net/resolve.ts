import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { DownloadError, abortedError, errorText } from './download-error.ts';

// Name resolution for the service's own outbound requests: resolved once, within the connect timeout,
// and the socket then connects to exactly the addresses that were checked (no second lookup a name
// could answer differently: DNS rebinding).

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type HostLookup = (host: string) => Promise<ResolvedAddress[]>;

export const systemLookup: HostLookup = async (host) => {
  const answers = await dnsLookup(host, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** Resolves within the connect timeout, or fails with CONNECT_TIMEOUT, DNS or ABORTED. */
export function resolveHost(host: string, lookup: HostLookup, timeoutMs: number, signal: AbortSignal | undefined, url: string): Promise<ResolvedAddress[]> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = (): void => finish(() => reject(abortedError(url)));
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => finish(() => reject(new DownloadError('CONNECT_TIMEOUT', `timed out after ${timeoutMs} ms resolving ${host}`, { url }))),
        timeoutMs,
      );
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    let answer: Promise<ResolvedAddress[]>;
    try {
      answer = lookup(host);
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (addresses) =>
        finish(() => {
          const valid = Array.isArray(addresses) ? addresses.filter((a) => a && typeof a.address === 'string' && isIP(a.address) !== 0) : [];
          if (valid.length === 0 || valid.length !== addresses.length) {
            reject(new DownloadError('DNS', `cannot resolve host ${host}: no usable address`, { url }));
          } else {
            resolve(valid.map((a) => ({ address: a.address, family: isIP(a.address) === 6 ? 6 : 4 })));
          }
        }),
      (err: unknown) => finish(() => reject(new DownloadError('DNS', `cannot resolve host ${host}: ${errorText(err)}`, { url, cause: err }))),
    );
  });
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A socket lookup that only ever answers the checked addresses of the one expected name. */
export function pinnedLookup(expectedHost: string, addresses: ResolvedAddress[]) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    if (hostname.toLowerCase() !== expectedHost.toLowerCase()) {
      const err: NodeJS.ErrnoException = new Error(`refusing to resolve ${hostname}: this connection is pinned to ${expectedHost}`);
      err.code = 'ENOTFOUND';
      process.nextTick(callback, err, '', 0);
      return;
    }
    const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
    if (wanted.length === 0) {
      const err: NodeJS.ErrnoException = new Error(`${hostname} has no checked address of family ${String(options.family)}`);
      err.code = 'ENOTFOUND';
      process.nextTick(callback, err, '', 0);
      return;
    }
    if (options.all)
      process.nextTick(
        callback,
        null,
        wanted.map((a) => ({ address: a.address, family: a.family })),
      );
    else process.nextTick(callback, null, wanted[0]!.address, wanted[0]!.family);
  };
}
