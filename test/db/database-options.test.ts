// [database] as an operator's glance-api.conf writes it: oslo.db's pool and session options, the
// connection URL as SQLAlchemy reads it, and the database the schema goes into.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Migrator, sql } from 'kysely';
import SQLite from 'better-sqlite3';
import { appendFileSync, chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/index.ts';
import { databasePoolSize } from '../../src/configured-parts.ts';
import { checkConnection, connectionNotes, openDatabase, syncSchema } from '../../src/db/connection.ts';
import { databaseUrlShown, parseDatabaseUrl } from '../../src/db/connection-url.ts';
import { migrationProvider } from '../../src/db/migrations/index.ts';
import { mysqlOptions, postgresOptions, postgresPrefersTls } from '../../src/db/client-options.ts';
import { forEachEngine, testEngines } from '../helpers/databases.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { runScript } from '../helpers/scripts.ts';

function poolSizeOf(lines: string): number | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-pool-'));
  try {
    writeFileSync(path.join(dir, 'gaze.conf'), `[database]\n${lines}\n`);
    return databasePoolSize(loadConfig(path.join(dir, 'gaze.conf'), {}));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('max_pool_size and max_overflow: their sum, with oslo.db defaults for the one not set; 10 when neither is', () => {
  assert.equal(poolSizeOf(''), undefined);
  assert.equal(poolSizeOf('max_pool_size = 3\nmax_overflow = 2'), 5);
  assert.equal(poolSizeOf('max_pool_size = 3'), 53);
  assert.equal(poolSizeOf('max_overflow = 0'), 5);
  assert.equal(poolSizeOf('max_pool_size = 0'), Infinity, "oslo.db's 0: no limit");
  assert.equal(poolSizeOf('max_pool_size = 3\nmax_overflow = -1'), Infinity, "SQLAlchemy's -1: no limit to the overflow");
  assert.throws(
    () => poolSizeOf('max_pool_size = -1'),
    (err: unknown) => err instanceof ConfigError && /max_pool_size: must be 0 \(no limit\) or more/.test(err.message),
  );
});

forEachEngine((engine) => {
  if (engine.name === 'sqlite') return; // one connection, whatever the options
  test('a pool of 3 opens no more than 3 connections for 8 queries at once, and all of them run', async () => {
    const db = openDatabase(await engine.url(), { maxConnections: 3 });
    try {
      const sleep = engine.name === 'postgresql' ? sql`select pg_sleep(0.2)` : sql`select sleep(0.2)`;
      let peak = 0;
      let queued = 0;
      const sampler = setInterval(() => {
        const usage = db.poolUsage();
        peak = Math.max(peak, usage.total);
        queued = Math.max(queued, usage.waiting);
      }, 5);
      const results = await Promise.all(Array.from({ length: 8 }, () => sleep.execute(db.kysely)));
      clearInterval(sampler);
      assert.equal(results.length, 8);
      assert.equal(db.poolUsage().max, 3);
      assert.ok(peak <= 3 && peak >= 2, `connections open at once: ${peak}`);
      assert.ok(queued >= 1, 'the other queries waited for a connection');
    } finally {
      await db.close();
    }
  });
});

forEachEngine((engine) => {
  if (engine.name === 'sqlite') return;
  test('idle connections the server ends (a DBA, a restart, an idle timeout) are dropped, and the next query opens another', async () => {
    const url = await engine.url();
    const lost: string[] = [];
    const db = openDatabase(url, { maxConnections: 3, onConnectionLost: (err) => lost.push(err.message) });
    const admin = openDatabase(url, { maxConnections: 1 });
    try {
      const idle = sql<{ n: number }>`select 1 as n`;
      await Promise.all(Array.from({ length: 3 }, () => idle.execute(db.kysely)));
      // Every other session of this database is ended by the server.
      if (engine.name === 'postgresql') {
        await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`.execute(admin.kysely);
      } else {
        const { rows } = await sql<{ id: number }>`select id from information_schema.processlist where db = database() and id <> connection_id()`.execute(
          admin.kysely,
        );
        assert.ok(rows.length >= 1);
        for (const { id } of rows) await sql.raw(`kill ${Number(id)}`).execute(admin.kysely);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(lost.length >= 1, 'each ended connection is told of (the service logs it)');
      // A query that meets a dead connection may fail; one after it runs on a new one.
      const results = await Promise.allSettled(Array.from({ length: 3 }, () => idle.execute(db.kysely)));
      assert.ok(results.length === 3);
      const again = await idle.execute(db.kysely);
      assert.equal(Number(again.rows[0]!.n), 1);
    } finally {
      await db.close();
      await admin.close();
    }
  });
});

test("connection URLs as SQLAlchemy's make_url reads them: passwords with / and #, an empty host, IPv6, the query", () => {
  const parts = (text: string) => {
    const u = parseDatabaseUrl(text);
    return [u.username, u.password, u.host, u.port, u.database, Object.fromEntries(u.query)];
  };
  assert.deepEqual(parts('mysql+pymysql://gaze:s3c#ret/pw@127.0.0.1:3306/glance?charset=utf8&unix_socket=/x/y.sock'), [
    'gaze',
    's3c#ret/pw',
    '127.0.0.1',
    3306,
    'glance',
    { charset: 'utf8', unix_socket: '/x/y.sock' },
  ]);
  assert.deepEqual(parts('mysql+pymysql://gaze:pw@/gaze?unix_socket=/run/mysqld.sock'), [
    'gaze',
    'pw',
    null,
    null,
    'gaze',
    { unix_socket: '/run/mysqld.sock' },
  ]);
  assert.deepEqual(parts('mysql+pymysql://gaze:pa%40ss+x@[::1]:3306/gl%20ance'), ['gaze', 'pa@ss+x', '::1', 3306, 'gl%20ance', {}]);
  assert.deepEqual(parts('postgresql://u@/db?host=/tmp/dir&port=5433'), ['u', null, null, null, 'db', { host: '/tmp/dir', port: '5433' }]);
  assert.deepEqual(parts('sqlite:///rel.db?timeout=5'), [null, null, null, null, 'rel.db', { timeout: '5' }]);
  assert.deepEqual(parts('sqlite:////abs/x.db'), [null, null, null, null, '/abs/x.db', {}]);
  assert.deepEqual(parts('sqlite://'), [null, null, null, null, null, {}]);
  assert.throws(() => parseDatabaseUrl('postgresql://u:p@h:/db'), /port \(after postgresql:\/\/h:\) is not a number/);
  // what the clients are given
  const socket = mysqlOptions(parseDatabaseUrl('mysql+pymysql://gaze:pw@/gaze?unix_socket=/run/mysqld.sock&connect_timeout=5'), 3);
  assert.deepEqual([socket.socketPath, socket.user, socket.password, socket.database, socket.connectTimeout], ['/run/mysqld.sock', 'gaze', 'pw', 'gaze', 5000]);
  assert.equal(mysqlOptions(parseDatabaseUrl('mysql://u:p@[::1]:3307/g'), 3).host, '::1');
  const pg = postgresOptions(parseDatabaseUrl('postgresql+psycopg2://u:p%2Fq@db.example:6432/glance?host=/run/postgresql&application_name=gaze'), 4);
  assert.deepEqual(
    [pg.user, pg.password, pg.host, pg.port, pg.database, pg.application_name, pg.ssl],
    ['u', 'p/q', '/run/postgresql', 6432, 'glance', 'gaze', false],
    'prefer over a Unix socket is plain, as libpq never uses TLS there',
  );
});

test("read_default_file: the option file's group fills what the URL leaves out (PyMySQL's reading), a missing file nothing", () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-mycnf-'));
  try {
    const cnf = path.join(dir, 'my.cnf');
    writeFileSync(
      cnf,
      [
        '# a comment',
        '!includedir /etc/mysql/conf.d/',
        '[mysqld]',
        'user = mysql',
        '[client]',
        'USER = fromfile',
        "password = 'se:cr=et'",
        'socket = /run/mysqld/mysqld.sock',
        'port: 3307',
        'database = filedb',
        'ssl-ca = ' + cnf,
        'no-auto-rehash',
        '[galera]',
        'user = other',
        '',
      ].join('\n'),
    );
    const fromFile = mysqlOptions(parseDatabaseUrl(`mysql+pymysql://@/?read_default_file=${cnf}`), 1);
    assert.deepEqual(
      [
        fromFile.user,
        fromFile.password,
        fromFile.socketPath,
        fromFile.port,
        fromFile.database,
        typeof fromFile.ssl === 'object' ? fromFile.ssl.rejectUnauthorized : fromFile.ssl,
      ],
      ['fromfile', 'se:cr=et', '/run/mysqld/mysqld.sock', 3307, 'filedb', true],
    );
    // The URL's own values win; read_default_group picks another group.
    const urlWins = mysqlOptions(parseDatabaseUrl(`mysql+pymysql://u:p@h:3306/db?unix_socket=/s&read_default_file=${cnf}&read_default_group=galera`), 1);
    assert.deepEqual([urlWins.user, urlWins.password, urlWins.host, urlWins.port, urlWins.socketPath, urlWins.ssl], ['u', 'p', 'h', 3306, '/s', undefined]);
    const otherGroup = mysqlOptions(parseDatabaseUrl(`mysql+pymysql://@h/db?read_default_file=${cnf}&read_default_group=galera`), 1);
    assert.equal(otherGroup.user, 'other');
    const missing = mysqlOptions(parseDatabaseUrl(`mysql+pymysql://@h/db?read_default_file=${path.join(dir, 'none.cnf')}`), 1);
    assert.deepEqual([missing.user, missing.password, missing.port], [undefined, undefined, 3306]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a URL's password is masked wherever it ends; URLs Gaze cannot use are refused with the reason before anything opens", () => {
  for (const [url, shown] of [
    ['mysql+pymysql://gaze:Sec,ret99@127.0.0.1:3306/gaze', 'mysql+pymysql://gaze:****@127.0.0.1:3306/gaze'],
    ['postgresql://gaze:Sec/ret99@h/gaze?sslmode=disable', 'postgresql://gaze:****@h/gaze?sslmode=disable'],
    ['mysql://gaze:s3c#ret@h/g', 'mysql://gaze:****@h/g'],
    ['sqlite:////abs/x.db', 'sqlite:////abs/x.db'],
    ['mysql+pymysql://glance:pa?ss@db/glance', 'mysql+pymysql://glance:****@db/glance'],
    ['postgresql://u:p?w@h/db?sslmode=require', 'postgresql://u:****@h/db?sslmode=require'],
    ['mysql://us@r:pw@h/db', 'mysql://us@r:****@h/db'],
    ['postgresql://u@h/db?x=a@b', 'postgresql://u@h/db?x=a@b'],
  ]) {
    assert.equal(databaseUrlShown(url!), shown);
  }
  assert.throws(() => checkConnection('sqlite://host/x.db'), /invalid SQLite URL 'sqlite:\/\/host\/x\.db'/);
  assert.throws(() => checkConnection('postgresql://u:secret@h/db?sslmode=verify'), /invalid sslmode value: "verify"/);
  assert.throws(
    () => checkConnection('mysql+pymysql://u:secret@h/db?ssl_ca=/nonexistent/ca.pem'),
    (err: Error) => /ssl_ca \/nonexistent\/ca\.pem cannot be read: ENOENT/.test(err.message) && !err.message.includes('secret'),
  );
  // Options without a value are none (parse_qsl's): no TLS from a blank ssl_ca, libpq's default sslmode.
  assert.equal(mysqlOptions(parseDatabaseUrl('mysql://u:p@h/db?ssl_ca=&ssl_verify_cert'), 1).ssl, undefined);
  const blank = parseDatabaseUrl('postgresql://u@h/db?sslmode=');
  assert.deepEqual([postgresOptions(blank, 1).ssl, postgresPrefersTls(blank)], [{ cert: undefined, key: undefined, rejectUnauthorized: false }, true]);
  assert.equal(postgresPrefersTls(parseDatabaseUrl('postgresql://u@h/db?sslmode=require')), false);
  assert.deepEqual(connectionNotes('postgresql://u@h/db?sslmode=allow'), [
    '[database] connection: sslmode=allow connects without TLS here (libpq would try TLS when the server refuses plain); write sslmode=require to encrypt',
  ]);
  assert.deepEqual(connectionNotes('postgresql://u@h/db?sslmode=prefer'), []);
  assert.deepEqual(connectionNotes('postgresql://u@h/db'), []);
  const tls = postgresOptions(parseDatabaseUrl('postgresql://u@h/db?sslmode=require'), 1).ssl;
  assert.deepEqual(tls, { cert: undefined, key: undefined, rejectUnauthorized: false });
});

forEachEngine((engine) => {
  test("a database holding Glance's tables is refused before anything is written to it", async () => {
    const db = openDatabase(await engine.url());
    try {
      await sql`create table alembic_version (version_num varchar(32) not null)`.execute(db.kysely);
      await sql`create table images (id varchar(36) not null primary key)`.execute(db.kysely);
      await assert.rejects(syncSchema(db), /the database holds Glance's schema \(glance-manage db_sync made it\): Gaze needs a database of its own/);
      const tables = (await db.kysely.introspection.getTables({ withInternalKyselyTables: true })).map((t) => t.name).sort();
      assert.deepEqual(tables, ['alembic_version', 'images']);
    } finally {
      await db.close();
    }
  });
  if (engine.name === 'postgresql') {
    test("tables of those names in another schema of the database are not Gaze's business; connect_timeout bounds a connection, not the wait for a free one", async () => {
      const url = await engine.url();
      const db = openDatabase(`${url}?connect_timeout=1`, { maxConnections: 1 });
      try {
        await sql`create schema other`.execute(db.kysely);
        await sql`create table other.alembic_version (version_num varchar(32) not null)`.execute(db.kysely);
        await sql`create table other.images (id varchar(36) not null primary key)`.execute(db.kysely);
        assert.ok((await syncSchema(db)).length > 0);
        // One connection, busy for 1.5 s: the second query waits for it longer than connect_timeout.
        const [slow, waiting] = await Promise.all([sql`select pg_sleep(1.5)`.execute(db.kysely), sql<{ n: number }>`select 2 as n`.execute(db.kysely)]);
        assert.equal(slow.rows.length, 1);
        assert.equal(Number(waiting.rows[0]!.n), 2);
      } finally {
        await db.close();
      }
    });
  }
  if (engine.name !== 'mysql') return;
  test('a db sync cut off midway (each DDL statement committed, the migration not recorded) is completed by the next sync', async () => {
    const db = openDatabase(await engine.url());
    try {
      const migrations = await migrationProvider.getMigrations();
      const names = Object.keys(migrations).sort();
      await new Migrator({ db: db.kysely, provider: migrationProvider }).migrateTo('0004_location_lifecycle');
      // Every later migration made whole, as MariaDB finishes a statement whose client died, and none recorded.
      const later = names.slice(names.indexOf('0004_location_lifecycle') + 1);
      for (const name of later) await migrations[name]!.up(db.kysely);
      assert.deepEqual(await syncSchema(db), later);
      assert.deepEqual(await syncSchema(db), []);
      assert.equal(Number((await sql<{ n: number }>`select count(*) as n from metadef_namespaces`.execute(db.kysely)).rows[0]!.n), 0);
    } finally {
      await db.close();
    }
  });
  test('a URL without credentials logs in with those of the option file its read_default_file names, as PyMySQL does', async () => {
    const url = parseDatabaseUrl(await engine.url());
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-mycnf-'));
    try {
      const cnf = path.join(dir, 'my.cnf');
      writeFileSync(cnf, `[client]\nuser = ${url.username}\npassword = "${url.password}"\n`);
      const db = openDatabase(`mysql+pymysql://${url.host}:${url.port}/${url.database}?read_default_file=${cnf}`);
      try {
        const rows = (await sql<{ who: string }>`select current_user() as who`.execute(db.kysely)).rows;
        assert.match(String(rows[0]!.who), new RegExp(`^${url.username}@`));
      } finally {
        await db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("each MySQL session takes oslo.db's mysql_sql_mode (TRADITIONAL), or the server's own when it is empty", async () => {
    const url = await engine.url();
    const modeOf = async (mysqlSqlMode?: string | null) => {
      const db = openDatabase(url, { mysqlSqlMode });
      try {
        return String((await sql<{ mode: string }>`select @@session.sql_mode as mode`.execute(db.kysely)).rows[0]!.mode);
      } finally {
        await db.close();
      }
    };
    assert.match(await modeOf(), /STRICT_ALL_TABLES/);
    const server = await modeOf(null);
    assert.doesNotMatch(server, /STRICT_ALL_TABLES/, 'the test server keeps its own default');
    assert.equal(await modeOf('ANSI_QUOTES'), 'ANSI_QUOTES');
  });
});

test(
  "PostgreSQL over TLS as libpq's sslmode means it: prefer (the default) TLS when the server offers it and plain when not, require encrypted without a check, verify-full against sslrootcert",
  { skip: !testEngines().includes('postgresql') },
  async () => {
    const server = await startPostgres();
    try {
      /** Whether each of `parallel` sessions opened at once through one pool is encrypted. */
      const encryptedEach = async (query: string, parallel: number) => {
        const db = openDatabase(`${server.url}?${query}`, { maxConnections: parallel });
        try {
          const session = () =>
            db.kysely.transaction().execute(async (trx) => {
              // Held a moment, so that the pool opens a connection for each.
              await sql`select pg_sleep(0.2)`.execute(trx);
              return (await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(trx)).rows[0]!.ssl;
            });
          return await Promise.all(Array.from({ length: parallel }, session));
        } finally {
          await db.close();
        }
      };
      const encrypted = async (query: string) => (await encryptedEach(query, 1))[0];
      // A server without TLS: prefer (and the default) fall back to plain, the first connections included.
      assert.deepEqual(await encryptedEach('sslmode=prefer', 3), [false, false, false]);
      assert.equal(await encrypted('application_name=gaze'), false);
      await assert.rejects(encrypted('sslmode=require'), /does not support SSL/);

      const data = path.join(server.dir, 'data');
      const crt = path.join(data, 'server.crt');
      const key = path.join(data, 'server.key');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          key,
          '-out',
          crt,
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      const owner = statSync(data);
      for (const file of [crt, key]) chownSync(file, owner.uid, owner.gid);
      chmodSync(key, 0o600);
      appendFileSync(path.join(data, 'postgresql.conf'), "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
      await runScript('stop-postgres.sh', [server.dir], 60_000);
      await runScript('start-postgres.sh', [server.dir, String(server.port)], 60_000);
      assert.deepEqual(await encryptedEach('sslmode=prefer', 3), [true, true, true]);
      assert.equal(await encrypted('application_name=gaze'), true, "libpq's default, prefer");
      assert.equal(await encrypted('sslmode=allow'), false);
      assert.equal(await encrypted('sslmode=require'), true);
      assert.equal(await encrypted(`sslmode=verify-full&sslrootcert=${crt}`), true);
      assert.equal(await encrypted(`sslmode=require&sslrootcert=${crt}`), true);
      await assert.rejects(encrypted('sslmode=verify-full'), /self.signed certificate/);
    } finally {
      await server.stop();
    }
  },
);

test("a SQLite transaction holds the write lock from its start: another process's write waits for it, and its own read-then-write never fails half-way", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-immediate-'));
  const file = path.join(dir, 'gaze.db');
  const db = openDatabase(`sqlite:///${file}`);
  // Another process on the same file, as a second worker is (with a short wait for the lock).
  const other = new SQLite(file);
  try {
    other.pragma('busy_timeout = 100');
    other.exec('create table probe (n integer)');
    await db.kysely.transaction().execute(async (trx) => {
      await sql`select count(*) from probe`.execute(trx);
      assert.throws(() => other.prepare('insert into probe values (1)').run(), { code: 'SQLITE_BUSY' });
      await sql`insert into probe values (2)`.execute(trx);
    });
    assert.deepEqual(other.prepare('select n from probe').all(), [{ n: 2 }]);
  } finally {
    other.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
