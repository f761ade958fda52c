// The rows by which nodes vouch that they run (NodesRepo) and the liveness built on them, on every
// engine: renewal, which names count as stopped (never one without a row), forgetting old rows, and
// the timer that renews and then runs the recovery pass.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { nodeName } from '../../src/util/process.ts';
import { NodesRepo } from '../../src/db/repos/nodes.ts';
import { NodeLiveness } from '../../src/services/node-liveness.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { forEachEngine } from '../helpers/databases.ts';
import { until } from '../helpers/wait.ts';
import { openDatabase, syncSchema, type Db } from '../../src/db/connection.ts';

const inSeconds = (n: number) => addSeconds(nowTimestamp(), n);
/** A node name of another host, as nodeName() builds them. */
const farNode = () => `far-${randomUUID()}:4242:some-boot:${randomUUID()}`;

forEachEngine((engine) => {
  describe('nodes', () => {
    let db: Db;
    let nodes: NodesRepo;
    before(async () => {
      db = await engine.open();
      nodes = new NodesRepo(db);
    });

    const aliveUntil = async (name: string) =>
      (await db.kysely.selectFrom('nodes').select('alive_until').where('name', '=', name).executeTakeFirst())?.alive_until;

    test('beat inserts a row and renews it', async () => {
      const name = farNode();
      await nodes.beat(name, inSeconds(10));
      const later = inSeconds(100);
      await nodes.beat(name, later);
      assert.equal(await aliveUntil(name), later);
      assert.equal((await db.kysely.selectFrom('nodes').select('name').where('name', '=', name).execute()).length, 1);
    });

    test('expiredAmong: only named nodes whose time has passed; a name without a row is not judged gone', async () => {
      const [stopped, running, unknown, other] = [farNode(), farNode(), farNode(), farNode()];
      await nodes.beat(stopped, inSeconds(-5));
      await nodes.beat(running, inSeconds(60));
      await nodes.beat(other, inSeconds(-5));
      assert.deepEqual([...(await nodes.expiredAmong([stopped, running, unknown]))], [stopped]);
      assert.deepEqual([...(await nodes.expiredAmong([]))], []);
    });

    test('forgetExpiredBefore drops only rows expired before the given time', async () => {
      const [old, recent] = [farNode(), farNode()];
      await nodes.beat(old, inSeconds(-3600));
      await nodes.beat(recent, inSeconds(-5));
      assert.ok((await nodes.forgetExpiredBefore(inSeconds(-60))) >= 1);
      assert.equal(await aliveUntil(old), undefined);
      assert.ok(await aliveUntil(recent));
    });

    test('liveness: another host is gone once its row expired; a dead process of this host only when probed (at start)', async () => {
      const me = nodeName();
      const deadHere = me.replace(`:${process.pid}:`, ':2147483646:');
      const [stopped, running, unknown] = [farNode(), farNode(), farNode()];
      await nodes.beat(stopped, inSeconds(-1));
      await nodes.beat(running, inSeconds(60));
      const liveness = new NodeLiveness(nodes, me, silentLogger());
      const names = [me, deadHere, stopped, running, unknown, stopped];
      assert.deepEqual([...(await liveness.goneAmong(names, true))].sort(), [deadHere, stopped].sort());
      assert.deepEqual([...(await liveness.goneAmong(names, false))], [stopped], 'no probe while running: rows alone decide');
    });

    test('liveness timers: renewals and passes while running; stop() marks the node expired and no pass follows', async () => {
      const me = farNode();
      const liveness = new NodeLiveness(nodes, me, silentLogger(), { beatMs: 20, aliveSeconds: 180 });
      await nodes.beat(me, inSeconds(-10));
      let passes = 0;
      liveness.start(async () => {
        passes++;
      });
      await until(async () => ((await nodes.expiredAmong([me])).size === 0 ? true : undefined), 'a renewal');
      assert.ok((await aliveUntil(me))! > nowTimestamp(), 'renewed into the future');
      await until(async () => passes >= 2 || undefined, 'two recovery passes');
      await liveness.stop();
      const counted = passes;
      assert.equal((await nodes.expiredAmong([me])).size, 1, 'a stopped node is recovered from at once');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(passes, counted, 'no pass after stop()');
    });

    test('a node that cannot renew (its database gone) makes no more passes', async () => {
      const own = openDatabase(await engine.url());
      await syncSchema(own);
      const me = farNode();
      const liveness = new NodeLiveness(new NodesRepo(own), me, silentLogger(), { beatMs: 20, aliveSeconds: 1 });
      await liveness.beat();
      let passes = 0;
      liveness.start(async () => {
        passes++;
      });
      await until(async () => passes >= 1 || undefined, 'a first pass');
      await own.close();
      await new Promise((resolve) => setTimeout(resolve, 700)); // past half the validity since the last renewal
      const settled = passes;
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(passes, settled, 'no pass without a recent renewal');
      await liveness.stop(); // its last write fails and is logged, not thrown
    });
  });
});
