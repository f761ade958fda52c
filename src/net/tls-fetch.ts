import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/index.ts';

/** keystoneauth's TLS options of a section ([keystone_authtoken], [oslo_limit]). */
export interface TlsOptions {
  /** CA certificates (PEM) to verify the server with, instead of the system's. */
  cafile: string | null;
  /** A client certificate and its key (PEM), for servers that ask for one. */
  certfile: string | null;
  keyfile: string | null;
  /** Skip the server's certificate check. */
  insecure: boolean;
}

/**
 * fetch for the calls of one section: the process's own when the section sets no TLS option, else one
 * whose connections verify the server with `cafile` (and only it, as keystoneauth's verify=cafile does),
 * show `certfile`, or skip the check. A file that cannot be read stops start-up.
 */
export function fetchWithTls(tls: TlsOptions, section: string): typeof fetch {
  if (!tls.cafile && !tls.certfile && !tls.insecure) return fetch;
  const read = (option: string, file: string | null): Buffer | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`[${section}] ${option} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (Boolean(tls.certfile) !== Boolean(tls.keyfile)) throw new ConfigError(`[${section}] certfile and keyfile go together`);
  const connect = {
    ca: read('cafile', tls.cafile),
    cert: read('certfile', tls.certfile),
    key: read('keyfile', tls.keyfile),
    rejectUnauthorized: !tls.insecure,
  };
  // undici's own fetch (the process's takes no dispatcher of another undici version), loaded only here.
  const client = import('undici').then(({ Agent, fetch }) => ({ fetch, dispatcher: new Agent({ connect }) }));
  client.catch(() => {});
  return (async (input: string | URL, init?: RequestInit) => {
    const { fetch, dispatcher } = await client;
    return fetch(input, { ...(init as object), dispatcher });
  }) as unknown as typeof fetch;
}
