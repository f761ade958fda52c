import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { PoolConfig } from 'pg';
import type { PoolOptions, SslOptions } from 'mysql2';
import type { DatabaseUrl } from './connection-url.ts';
import { mysqlOptionFile } from './mysql-option-file.ts';

// What the drivers Glance's URLs name (psycopg2, PyMySQL) make of a URL's parts and query options,
// as options of Node's clients (pg, mysql2). Options neither has a meaning for here are ignored, as
// unknown query options are by the Python drivers' callers.

/**
 * psycopg2's (libpq's): the query's host, port and dbname win over the URL's, as SQLAlchemy passes them.
 * connect_timeout: postgresConnectTimeoutMs.
 */
export function postgresOptions(url: DatabaseUrl, max: number): PoolConfig {
  const q = url.query;
  const port = q.get('port') ?? url.port;
  const host = postgresHost(url);
  return {
    max,
    user: url.username ?? undefined,
    password: url.password ?? undefined,
    // A host that is a directory is libpq's unix socket directory (`?host=/run/postgresql`); pg reads it so too.
    host,
    port: port === null ? undefined : Number(port),
    database: q.get('dbname') ?? url.database ?? undefined,
    application_name: q.get('application_name'),
    ssl: postgresTls(q, host?.startsWith('/') === true),
  };
}

const postgresHost = (url: DatabaseUrl): string | undefined => url.query.get('host') ?? url.host ?? undefined;

/** libpq's connect_timeout, in ms: a bound on opening a connection (not on waiting for one of the pool's). */
export function postgresConnectTimeoutMs(url: DatabaseUrl): number | undefined {
  return seconds(url.query.get('connect_timeout'));
}

/** sslmode=prefer, libpq's default, over TCP: the options are TLS's, used if the server offers TLS (TlsIfOffered). */
export function postgresPrefersTls(url: DatabaseUrl): boolean {
  return (url.query.get('sslmode') ?? 'prefer') === 'prefer' && postgresHost(url)?.startsWith('/') !== true;
}

/**
 * libpq's sslmode: `disable` and `allow` (which tries TLS only when the server refuses plain) connect
 * without TLS here; `prefer` (libpq's default) tries TLS without checking the certificate, and falls
 * back to plain when the server declines it (see postgresPrefersTls), and is plain over a Unix socket,
 * where libpq never uses TLS; `require` encrypts without checking the certificate
 * (unless sslrootcert names a CA, as libpq then checks it), `verify-ca` checks the certificate against
 * sslrootcert (else the system's CAs) and `verify-full` its name too. sslcert and sslkey: the client's.
 */
function postgresTls(q: Map<string, string>, overSocket: boolean): TlsOptions | false {
  const mode = q.get('sslmode') ?? 'prefer';
  const ca = fileOption(q, 'sslrootcert');
  const client = { cert: fileOption(q, 'sslcert'), key: fileOption(q, 'sslkey') };
  const verifyCa = { ...client, ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  switch (mode) {
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
      return overSocket ? false : { ...client, rejectUnauthorized: false };
    case 'require':
      return ca ? verifyCa : { ...client, rejectUnauthorized: false };
    case 'verify-ca':
      return verifyCa;
    case 'verify-full':
      return { ...client, ca, rejectUnauthorized: true };
    default:
      throw new Error(`invalid sslmode value: "${mode}"`);
  }
}

/**
 * PyMySQL's, as SQLAlchemy passes them: `unix_socket`, `connect_timeout`, `read_default_file`, and
 * TLS as soon as one of ssl_ca, ssl_cert, ssl_key, ssl_verify_cert or ssl_verify_identity is given: the certificate is
 * checked when ssl_verify_cert says so, or by default when a CA is named; its name when
 * ssl_verify_identity (or ssl_check_hostname) says so, or by default when a CA is named.
 */
export function mysqlOptions(url: DatabaseUrl, connectionLimit: number): PoolOptions {
  // What the URL leaves out, an option file it names may give (read_default_file).
  const file = mysqlOptionFile(url.query);
  const q = new Map([...Object.entries(file), ...url.query]);
  return {
    host: url.host ?? file.host ?? '127.0.0.1',
    port: url.port ?? (file.port ? Number(file.port) : 3306),
    socketPath: q.get('unix_socket'),
    user: url.username || file.user,
    password: url.password || file.password,
    database: url.database || file.database,
    connectionLimit,
    connectTimeout: seconds(q.get('connect_timeout')),
    ssl: mysqlTls(q),
  };
}

function mysqlTls(q: Map<string, string>): SslOptions | undefined {
  const named = ['ssl_ca', 'ssl_cert', 'ssl_key', 'ssl_verify_cert', 'ssl_verify_identity', 'ssl_check_hostname'].filter((k) => q.has(k));
  if (named.length === 0) return undefined;
  const ca = fileOption(q, 'ssl_ca');
  const verifyCert = q.has('ssl_verify_cert') ? isTrue(q.get('ssl_verify_cert')!) : ca !== undefined;
  const identity = q.get('ssl_verify_identity') ?? q.get('ssl_check_hostname');
  const verifyName = identity !== undefined ? isTrue(identity) : ca !== undefined;
  return { ca, cert: fileOption(q, 'ssl_cert'), key: fileOption(q, 'ssl_key'), rejectUnauthorized: verifyCert, verifyIdentity: verifyCert && verifyName };
}

/** A file a query option names, read now: a file that cannot be read stops the start, as in the drivers. */
function fileOption(q: Map<string, string>, name: string): Buffer | undefined {
  const file = q.get(name);
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`the database URL's ${name} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function seconds(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const n = Number(text) * 1000;
  return n > 0 ? n : undefined;
}

function isTrue(text: string): boolean {
  return /^(1|true|yes|on|required)$/i.test(text.trim());
}
