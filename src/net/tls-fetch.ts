import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, type Config } from '../config/index.ts';

/** keystoneauth's TLS options of a section ([keystone_authtoken], [oslo_limit]). */
export interface TlsOptions {
  /** CA certificates (PEM) to verify the server with, instead of the system's. */
  cafile: string | null;
  /** A client certificate (PEM), with its key in `keyfile` or in the same file. */
  certfile: string | null;
  keyfile: string | null;
  /** Skip the server's certificate check. */
  insecure: boolean;
}

/** The TLS options of a section that has keystoneauth's. */
export function tlsOptionsOf(config: Config, section: 'keystone_authtoken' | 'oslo_limit'): TlsOptions {
  const text = (option: 'cafile' | 'certfile' | 'keyfile') => config.get(section, option) || null;
  return { cafile: text('cafile'), certfile: text('certfile'), keyfile: text('keyfile'), insecure: config.get(section, 'insecure') };
}

/** A PEM file named by an option, read at start: one that cannot be read stops start-up, naming the option. */
export function readPemFile(file: string, where: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${where} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * fetch for the calls of one section: the process's own when the section sets no TLS option, else one
 * whose connections verify the server with `cafile` (and only it, as keystoneauth's verify=cafile does),
 * show `certfile`, or skip the check. As keystoneauth, a keyfile without a certfile is not used.
 */
export function fetchWithTls(tls: TlsOptions, section: string, warn?: (message: string) => void): typeof fetch {
  if (!tls.cafile && !tls.certfile && !tls.insecure) return fetch;
  const read = (option: string, file: string | null) => (file ? readPemFile(file, `[${section}] ${option}`) : undefined);
  const cert = read('certfile', tls.certfile);
  // A cafile that is not there (devstack names one whether or not TLS is on) is keystoneauth's problem
  // only over https, where no certificate can then be verified: said, not refused, when `warn` is given.
  const missingCa = warn && tls.cafile && !existsSync(tls.cafile);
  if (missingCa)
    warn(`[${section}] cafile ${tls.cafile} does not exist: https connections of ${section} will fail their certificate check; http ones do not use it`);
  const connect = {
    ca: missingCa ? [] : read('cafile', tls.cafile),
    cert,
    key: cert && (tls.keyfile ? read('keyfile', tls.keyfile) : cert),
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
