import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from './config/index.ts';
import { createApp, databaseUrl } from './app.ts';
import { openDatabase, syncSchema } from './db/connection.ts';

const USAGE = `usage: gaze <command> [--config FILE]

commands:
  serve      start the Image API service
  db sync    create or upgrade the database schema

The config file (INI, Glance's option names) may also be given as GAZE_CONFIG=FILE.
Without one, the embedded defaults apply: SQLite and a file store under ./data, no Keystone.`;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function readConfig(file: string | undefined): Config {
  const config = loadConfig(file ?? process.env.GAZE_CONFIG);
  for (const warning of config.warnings) console.warn(`gaze: ${warning}`);
  return config;
}

async function serve(config: Config): Promise<void> {
  const host = config.get<string>('DEFAULT', 'bind_host');
  const port = config.get<number>('DEFAULT', 'bind_port');
  const noAuth = config.get<string>('paste_deploy', 'flavor').trim() === '';
  // Without authentication every caller is an admin: only loopback unless the operator says otherwise.
  if (noAuth && !LOOPBACK.test(host) && !config.get<boolean>('DEFAULT', 'noauth_allow_remote')) {
    throw new Error(`refusing to serve without authentication on ${host}: set [DEFAULT] noauth_allow_remote = true, or use [paste_deploy] flavor = keystone`);
  }
  const workers = config.get<number>('DEFAULT', 'workers');
  if (workers > 1 && cluster.isPrimary) return supervise(config, workers, host, port, noAuth);
  const app = await createApp(config, { logger: process.env.GAZE_LOG_REQUESTS === '1' });
  await app.server.listen({ host, port });
  if (cluster.isPrimary) console.log(`gaze: serving the Image API on ${displayUrl(host, port)} (${noAuth ? 'no auth' : 'keystone'})`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await app.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function displayUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}

/**
 * `workers = N` (N > 1): N processes share the listening socket; the database is the only shared state
 * (a delete on one worker still ends an upload running on another: its final compare-and-set fails).
 * The schema is synced once here so that workers do not race on it.
 */
async function supervise(config: Config, workers: number, host: string, port: number, noAuth: boolean): Promise<void> {
  await dbSync(config, true);
  let stopping = false;
  const start = () => cluster.fork().on('exit', (code, signal) => {
    if (stopping) return;
    console.error(`gaze: worker exited (${signal ?? code}); starting another`);
    setTimeout(start, 1000);
  });
  for (let i = 0; i < workers; i++) start();
  console.log(`gaze: serving the Image API on ${displayUrl(host, port)} with ${workers} workers (${noAuth ? 'no auth' : 'keystone'})`);
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function dbSync(config: Config, quiet = false): Promise<void> {
  const db = openDatabase(databaseUrl(config));
  try {
    const applied = await syncSchema(db);
    if (!quiet) console.log(applied.length ? `gaze: applied ${applied.join(', ')}` : 'gaze: database schema is up to date');
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals.join(' ');
  if (values.help || command === '') {
    console.log(USAGE);
    return;
  }
  const config = readConfig(values.config);
  if (command === 'serve') return serve(config);
  if (command === 'db sync') return dbSync(config);
  throw new Error(`unknown command '${command}'\n\n${USAGE}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`gaze: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
