import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configFiles, ConfigError, loadConfig, type Config } from './config/index.ts';
import type { ConfigArg } from './config/sources.ts';
import { configuredParts, databaseOptions, databaseUrl, scrubTime } from './configured-parts.ts';
import { runCacheCommand } from './cache/command.ts';
import { ImagesRepo } from './db/repos/images.ts';
import { DelayedDeletesRepo } from './db/repos/delayed-deletes.ts';
import { restoreDeletedImage } from './services/delayed-delete.ts';
import { DataScrubber } from './services/scrubber.ts';
import { StoreRegistry } from './stores/registry.ts';
import { migrationState, newerSchema, openDatabase, openWithSchema, sqliteDatabaseFile, type Db } from './db/connection.ts';
import { migrationProvider } from './db/migrations/index.ts';
import { PurgeRepo } from './db/repos/purge.ts';
import { addSeconds, nowTimestamp } from './domain/time.ts';
import { DatabaseClock } from './db/clock.ts';
import { MetadefNamespacesRepo } from './db/repos/metadef-namespaces.ts';
import { MetadefContentsRepo } from './db/repos/metadef-contents.ts';
import { exportMetadefs, loadMetadefs, unloadMetadefs, type LoadOptions } from './services/metadef-files.ts';
import { pino } from 'pino';
import { createLogger, logOptions, type Logger } from './util/logger.ts';
import { dbSync, serve } from './serve.ts';
import { shownValue } from './config/shown.ts';

// What a command prints for the person who ran it; `serve` logs through the logger instead.
const print = (line: string) => process.stdout.write(`${line}\n`);
const complain = (line: string) => process.stderr.write(`${line}\n`);
/** For commands run by a person: warnings as plain `gaze: …` lines on stderr. */
const plainLogger = (): Logger =>
  pino(
    { level: 'warn' },
    {
      write: (line: string) => {
        const { msg, err } = JSON.parse(line) as { msg: string; err?: { message?: string } };
        complain(`gaze: ${msg}${err?.message ? `: ${err.message}` : ''}`);
      },
    },
  );

/** Bad usage (an unknown command or option): exit code 2, as glance-manage's. */
class UsageError extends Error {}

/** The configured database, which must exist (a SQLite file is never created here). */
function openExistingDatabase(config: Config, url = databaseUrl(config)): Db {
  return openDatabase(url, { mustExist: true, mysqlSqlMode: databaseOptions(config).mysqlSqlMode });
}

/** The database as every command but `db sync` and `serve` uses it: existing, with all of Gaze's schema and no newer one. */
function openSyncedDatabase(config: Config): Promise<Db> {
  return openWithSchema(databaseUrl(config), { mysqlSqlMode: databaseOptions(config).mysqlSqlMode });
}

const USAGE = `usage: gaze <command> [--config-file FILE]... [--config-dir DIR]...

commands:
  serve          start the Image API service
  db sync        create or upgrade the database schema
  db version     print the last schema migration applied
  db check       say whether db sync has work to do (exit 3 when it has), like glance-manage db check
  db purge [--age_in_days N] [--max_rows M]
                 remove tasks that expired more than N days ago (30), at most M rows (100; -1: all),
                 like glance-manage db purge
  db purge-images-table [--age_in_days N] [--max_rows M]
                 remove the rows of images deleted more than N days ago (180) whose data is gone, at
                 most M (100; -1: all): their ids may then be used again
  db load-metadefs [PATH | --path PATH] [--merge [--prefer-new | --overwrite]]
                 load Glance's metadata definition files (default: [DEFAULT] metadata_source_path,
                 /etc/glance/metadefs): a namespace that exists is skipped, unless --merge
  db unload-metadefs           remove every metadata definition
  db export-metadefs DIR       write each namespace to DIR as a JSON file
  cache list | queue ID... | delete ID... | clear [--target both|cache|queue] | prune
                 this node's image cache ([DEFAULT] image_cache_dir), like glance-cache-manage
                 and glance-cache-prune
  scrub          one pass of the scrubber every node runs each minute, like glance-scrubber without
                 --daemon: the data of images deleted with [DEFAULT] delayed_delete scrub_time ago,
                 and data whose delete failed, is removed
  scrub --restore ID
                 make an image deleted with [DEFAULT] delayed_delete active again, while its data is
                 kept (scrub_time), like glance-scrubber --restore
  config check   read the configuration, print its warnings, and exit 0 (or 2 with the first error)
  config show    print every option's value and where it came from

Configuration (oslo.config's INI, Glance's option names), later files winning:
  --config-file FILE   a file (repeatable; --config FILE is the same)
  --config-dir DIR     every *.conf in DIR, in sorted order (repeatable); without one, the *.conf of
                       glance.conf.d and glance-api.conf.d (in ~/.glance, ~, /etc/glance or /etc) first
  GAZE_CONFIG=FILE     when no option names a file
  OS_GLANCE_CONFIG_DIR=DIR   Glance's layout: DIR/glance-api-paste.ini and DIR/glance-image-import.conf
                       when present, then DIR/glance-api.conf
glance-manage's spellings are read too: load_metadefs, --prefer_new, purge_images_table, …
Without any of these, the embedded defaults apply: SQLite and a file store under ./data, no Keystone.`;

/** Options whose value may be a negative number: argparse reads `--max_rows -1` as one, parseArgs as a second option. */
const SIGNED_OPTIONS = new Set(['--age-in-days', '--age_in_days', '--max-rows', '--max_rows']);

function joinSignedValues(argv: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (SIGNED_OPTIONS.has(argv[i]!) && next !== undefined && /^-\d/.test(next)) joined.push(`${argv[i]}=${argv[++i]}`);
    else joined.push(argv[i]!);
  }
  return joined;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = asUsage(() =>
    parseArgs({
      args: joinSignedValues(argv),
      allowPositionals: true,
      tokens: true,
      options: {
        config: { type: 'string', short: 'c', multiple: true },
        'config-file': { type: 'string', multiple: true },
        'config-dir': { type: 'string', multiple: true },
        merge: { type: 'boolean' },
        'prefer-new': { type: 'boolean' },
        overwrite: { type: 'boolean' },
        // glance-manage's spellings, so that an operator's scripts run unchanged.
        prefer_new: { type: 'boolean' },
        path: { type: 'string' },
        'age-in-days': { type: 'string' },
        age_in_days: { type: 'string' },
        'max-rows': { type: 'string' },
        max_rows: { type: 'string' },
        target: { type: 'string' },
        restore: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
  const [first, givenSecond, ...given] = positionals;
  // glance-manage's command names (load_metadefs, purge_images_table) are Gaze's with dashes.
  const second = first === 'db' ? givenSecond?.replaceAll('_', '-') : givenSecond;
  const operands = values.path !== undefined ? [values.path, ...given] : given;
  const command = [first, second].filter(Boolean).join(' ');
  if (values.help || command === '') {
    print(USAGE);
    return;
  }
  // The order on the command line decides which file wins, files and directories alike.
  const args: ConfigArg[] = tokens.flatMap((t) =>
    t.kind === 'option' && t.value !== undefined && t.name.startsWith('config')
      ? [{ kind: t.name === 'config-dir' ? ('dir' as const) : ('file' as const), path: t.value }]
      : [],
  );
  const config = loadConfig(configFiles(args));
  if (command === 'serve') return serve(config);
  for (const warning of config.warnings) complain(`gaze: ${warning}`);
  if (command === 'db sync') return dbSync(config, plainLogger(), print);
  if (command === 'config check') {
    // Everything `serve` builds from the configuration alone, without opening the database.
    await (await configuredParts(config, plainLogger())).auth.close?.();
    print(`gaze: the configuration is usable (${config.files.length ? config.files.join(', ') : 'embedded defaults'})`);
    return;
  }
  if (command === 'config show') return showConfig(config);
  if (first === 'cache') return cacheCommand(config, second, operands, values.target);
  if (command === 'scrub') return values.restore === undefined ? scrubCommand(config) : restoreCommand(config, values.restore);
  if (command === 'db load-metadefs' || command === 'db unload-metadefs' || command === 'db export-metadefs') {
    return metadefsCommand(config, command, operands, {
      merge: values.merge ?? false,
      preferNew: values['prefer-new'] ?? values.prefer_new ?? false,
      overwrite: values.overwrite ?? false,
    });
  }
  if (command === 'db purge' || command === 'db purge-images-table') {
    const age = intOption('age_in_days', values['age-in-days'] ?? values.age_in_days, command === 'db purge' ? 30 : 180);
    return purgeCommand(config, command === 'db purge' ? 'tasks' : 'images', age, intOption('max_rows', values['max-rows'] ?? values.max_rows, 100));
  }
  if (command === 'db version' || command === 'db check') return schemaCommand(config, command);
  if (first === 'db' && second === undefined) {
    throw new UsageError(`db needs a command: sync, version, check, purge, purge-images-table, load-metadefs, unload-metadefs or export-metadefs\n\n${USAGE}`);
  }
  throw new UsageError(`unknown command '${command}'\n\n${USAGE}`);
}

/** An integer option, as argparse's type=int reads it (bad usage otherwise); `fallback` when absent. */
function intOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\s*[-+]?\d+\s*$/.test(text)) throw new UsageError(`argument --${name}: invalid int value: '${text}'`);
  return Number(text);
}

/**
 * `gaze db purge` (expired tasks) and `gaze db purge-images-table` (rows of deleted images whose data is
 * gone), as glance-manage's, with its checks of the arguments and its defaults (30 and 180 days, 100 rows).
 */
async function purgeCommand(config: Config, what: 'tasks' | 'images', ageInDays: number, maxRows: number): Promise<void> {
  if (ageInDays < 0) throw new Error('Must supply a non-negative value for age.');
  if (ageInDays >= Date.now() / 86_400_000) throw new Error('Maximal age is count of days since epoch.');
  if (maxRows < -1) throw new Error('Minimal rows limit is -1.');
  const db = await openSyncedDatabase(config);
  try {
    // The cutoff is on the database server's clock, which the rows' times are on.
    await new DatabaseClock(db, plainLogger()).sync();
    const cutoff = addSeconds(nowTimestamp(), -ageInDays * 86_400);
    const repo = new PurgeRepo(db);
    const purged = what === 'tasks' ? await repo.purgeTasks(cutoff, maxRows) : await repo.purgeImages(cutoff, maxRows);
    print(`gaze: purged ${purged} row(s) from ${what === 'tasks' ? 'tasks expired' : 'images deleted'} before ${cutoff.slice(0, 19)}`);
  } finally {
    await db.close();
  }
}

/** `gaze db version` (the last migration applied) and `gaze db check` (exit 3 when `db sync` has work to do), as glance-manage's. */
async function schemaCommand(config: Config, command: 'db version' | 'db check'): Promise<void> {
  // A SQLite file not made yet has the whole schema to come (db sync makes it): said as for an empty one.
  const file = sqliteDatabaseFile(databaseUrl(config));
  if (file && !existsSync(file)) {
    if (command === 'db version') print('The database has none of Gaze\'s schema yet: run "gaze db sync".');
    else notUpToDate(Object.keys(await migrationProvider.getMigrations()).length);
    return;
  }
  const db = openExistingDatabase(config);
  try {
    const { applied, pending, unknown } = await migrationState(db);
    if (command === 'db version') {
      print(unknown.at(-1) ?? applied.at(-1) ?? 'The database has none of Gaze\'s schema yet: run "gaze db sync".');
    } else if (unknown.length > 0) {
      // As serve and db sync refuse it.
      print(`The database has ${newerSchema(unknown.at(-1)!)}.`);
      process.exitCode = 1;
    } else if (pending.length === 0) {
      print('Database is up to date. No upgrades needed.');
    } else {
      notUpToDate(pending.length);
    }
  } finally {
    await db.close();
  }
}

/** db check's answer when db sync has work (glance-manage's exit code 3). */
function notUpToDate(migrations: number): void {
  print(`Your database is not up to date (${migrations} migrations to apply). Your next step is to run \`gaze db sync\`.`);
  process.exitCode = 3;
}

/** node's parseArgs refuses an unknown option or a missing value: bad usage. */
function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')) throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
    throw err;
  }
}

async function cacheCommand(config: Config, verb: string | undefined, operands: string[], target: string | undefined): Promise<void> {
  const dir = config.get('DEFAULT', 'image_cache_dir');
  if (!dir) throw new ConfigError('[DEFAULT] image_cache_dir is not set: this node has no image cache');
  const db = await openSyncedDatabase(config);
  try {
    await runCacheCommand(verb, operands, target, {
      dir,
      database: config.get('DEFAULT', 'image_cache_sqlite_db'),
      maxBytes: config.get('DEFAULT', 'image_cache_max_size'),
      stallSeconds: config.get('DEFAULT', 'image_cache_stall_time'),
      images: new ImagesRepo(db),
      print,
    });
  } finally {
    await db.close();
  }
}

/** Runs a command with the configured stores and the database, and closes both afterwards. */
async function withStoresAndDatabase(config: Config, run: (stores: StoreRegistry, db: Db, log: Logger) => Promise<void>): Promise<void> {
  const log = plainLogger();
  const stores = await StoreRegistry.create(config, { log });
  let db: Db;
  try {
    db = await openSyncedDatabase(config);
  } catch (err) {
    await stores.close();
    throw err;
  }
  try {
    await run(stores, db, log);
  } finally {
    await db.close();
    await stores.close();
  }
}

/** `gaze scrub`, as `glance-scrubber` run once (from cron): the pass the service itself makes every minute. */
async function scrubCommand(config: Config): Promise<void> {
  const scrubTimeSeconds = scrubTime(config);
  await withStoresAndDatabase(config, async (stores, db, log) => {
    // Due is measured against the database server's time, which the service's rows carry.
    await new DatabaseClock(db, log).sync();
    const scrubber = new DataScrubber(
      { images: new ImagesRepo(db), delayedDeletes: new DelayedDeletesRepo(db), stores, log },
      { intervalSeconds: 60, graceSeconds: 60, scrubTimeSeconds },
    );
    const done = await scrubber.run();
    print(`gaze: ${done.imagesDeleted} deleted images ended, ${done.locationsRemoved} locations' data removed, ${done.locationsKept} kept for a later pass`);
    if (done.locationsKept || !done.complete) process.exitCode = 1;
  });
}

/** `gaze scrub --restore ID`, as `glance-scrubber --restore ID`. */
async function restoreCommand(config: Config, id: string): Promise<void> {
  if (!id) throw new Error('scrub --restore needs an image id');
  await withStoresAndDatabase(config, async (stores, db) => {
    const restored = await restoreDeletedImage({ delayedDeletes: new DelayedDeletesRepo(db), stores }, id);
    print(`gaze: image ${id} is active again, with its data at ${restored.map((l) => l.url).join(', ')}`);
  });
}

async function metadefsCommand(config: Config, command: string, operands: string[], opts: LoadOptions): Promise<void> {
  const db = await openSyncedDatabase(config);
  try {
    // The rows it writes carry the database server's time, as the service's do (and a far clock is told).
    await new DatabaseClock(db, createLogger(logOptions(config))).sync();
    const repos = { namespaces: new MetadefNamespacesRepo(db), contents: new MetadefContentsRepo(db) };
    if (command === 'db load-metadefs') {
      const source = operands[0] ?? config.get('DEFAULT', 'metadata_source_path');
      const counts = await loadMetadefs(repos, source, opts, (line) => complain(`gaze: ${line}`));
      print(`gaze: ${counts.loaded} namespaces loaded, ${counts.skipped} already there, ${counts.failed} files refused (${source})`);
      if (counts.failed) process.exitCode = 1;
    } else if (command === 'db unload-metadefs') {
      await unloadMetadefs(repos.namespaces);
      print('gaze: every metadata definition was removed');
    } else {
      if (!operands[0]) throw new Error('db export-metadefs needs a directory');
      const files = await exportMetadefs(repos, operands[0], (line) => complain(`gaze: ${line}`));
      const distinct = new Set(files).size;
      print(
        `gaze: ${files.length} namespaces written to ${operands[0]}${distinct < files.length ? ` (into ${distinct} files: some names map to the same file)` : ''}`,
      );
    }
  } finally {
    await db.close();
  }
}

/** Every option as INI, with where its value came from. */
function showConfig(config: Config): void {
  let section = '';
  for (const entry of config.entries()) {
    if (entry.section !== section) {
      print(`${section ? '\n' : ''}[${entry.section}]`);
      section = entry.section;
    }
    print(`${entry.option} = ${shownValue(entry)}    # ${entry.from}`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  complain(`gaze: ${err instanceof Error ? err.message : String(err)}`);
  // A configuration that cannot be used is the operator's to fix: exit code 2, as for bad usage.
  process.exit(err instanceof ConfigError || err instanceof UsageError ? 2 : 1);
});
