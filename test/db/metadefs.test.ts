import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { forEachEngine } from '../helpers/databases.ts';
import { MetadefNamespacesRepo } from '../../src/db/repos/metadef-namespaces.ts';
import { MetadefContentsRepo } from '../../src/db/repos/metadef-contents.ts';
import { exportMetadefs, loadMetadefs, unloadMetadefs } from '../../src/services/metadef-files.ts';

// `gaze db load-metadefs` and its siblings on SQLite and PostgreSQL, with the metadata definition files
// Debian ships with Glance (glance-common, /etc/glance/metadefs: 33 namespaces).

const SHIPPED = '/etc/glance/metadefs';
const skip = !existsSync(SHIPPED) && 'glance-common is not installed (scripts/install-system-deps.sh installs it)';
const none = { merge: false, preferNew: false, overwrite: false };
const quiet = () => {};

forEachEngine((engine) => {
  let repos: { namespaces: MetadefNamespacesRepo; contents: MetadefContentsRepo };
  let dir: string;
  before(async () => {
    const db = await engine.open();
    repos = { namespaces: new MetadefNamespacesRepo(db), contents: new MetadefContentsRepo(db) };
    dir = mkdtempSync(path.join(tmpdir(), 'gaze-metadefs-'));
  });

  const all = () => repos.namespaces.list({ caller: { isAdmin: true, projectId: null }, sortKey: 'namespace', sortDir: 'asc', limit: 1000 });

  test("Debian's 33 files load; a second load changes nothing (existing namespaces are skipped)", { skip }, async () => {
    const first = await loadMetadefs(repos, SHIPPED, none, quiet);
    assert.deepEqual(first, { loaded: 33, skipped: 0, failed: 0 });
    const namespaces = await all();
    assert.equal(namespaces.length, 33);
    // Loaded in the directory's own order, as Glance's loader takes Python's os.listdir(): the default
    // newest-first list then reads the same on both.
    const listdir = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', `import json, os; print(json.dumps(os.listdir(${JSON.stringify(SHIPPED)})))`], { encoding: 'utf8' }),
    );
    const fileOf = new Map(readdirSync(SHIPPED).map((f) => [JSON.parse(readFileSync(path.join(SHIPPED, f), 'utf8')).namespace, f]));
    const byId = [...namespaces].sort((a, b) => a.id - b.id).map((n) => fileOf.get(n.namespace));
    assert.deepEqual(
      byId,
      listdir.filter((f: string) => f.endsWith('.json')),
    );
    const libvirt = namespaces.find((n) => n.namespace === 'OS::Compute::Libvirt')!;
    assert.equal(libvirt.owner, 'admin');
    assert.equal(libvirt.updated_at, null, 'loaded rows have no updated_at, as with glance-manage');
    assert.equal(namespaces.find((n) => n.namespace === 'OS::Glance::CommonImageProperties')!.visibility, null, 'its file has no visibility');
    const props = await repos.contents.properties(libvirt.id);
    assert.ok(props.some((p) => p.name === 'boot_menu'));
    assert.ok((await repos.namespaces.associations(libvirt.id)).some((a) => a.name === 'OS::Glance::Image' && a.prefix === 'hw_'));
    assert.ok(
      (await repos.namespaces.resourceTypes()).every((t) => t.protected),
      'types made by a load are protected',
    );
    // an integer default is kept as text, as Glance serves it
    const quota = (await all()).find((n) => n.namespace === 'OS::Compute::Quota')!;
    const withDefault = (await repos.contents.objects(quota.id)).flatMap((o) => Object.values(o.properties)).find((p) => p.default !== undefined);
    if (withDefault) assert.equal(typeof withDefault.default, 'string');

    await repos.contents.insertTag(libvirt.id, 'local-change');
    assert.deepEqual(await loadMetadefs(repos, SHIPPED, none, quiet), { loaded: 0, skipped: 33, failed: 0 });
    assert.ok(await repos.contents.tag(libvirt.id, 'local-change'), 'a skipped namespace keeps what was changed in it');
  });

  test('--merge adds what is missing; --prefer-new also overwrites; --overwrite reloads exactly', { skip }, async () => {
    const ns = (await repos.namespaces.get('OS::Compute::Libvirt'))!;
    const file = path.join(dir, 'libvirt.json');
    const original = JSON.parse(readFileSync(path.join(SHIPPED, 'compute-libvirt.json'), 'utf8'));
    const changed = {
      ...original,
      description: 'from the file',
      properties: { ...original.properties, boot_menu: { type: 'string', title: 'Changed' }, brand_new: { type: 'string', title: 'New' } },
    };
    writeFileSync(file, JSON.stringify(changed));

    assert.deepEqual(await loadMetadefs(repos, file, { ...none, merge: true }, quiet), { loaded: 1, skipped: 0, failed: 0 });
    assert.equal((await repos.contents.property(ns.id, 'brand_new'))?.definition.title, 'New', 'merge adds');
    assert.notEqual((await repos.contents.property(ns.id, 'boot_menu'))?.definition.title, 'Changed', 'merge keeps what exists');
    assert.notEqual((await repos.namespaces.get('OS::Compute::Libvirt'))?.description, 'from the file');

    await loadMetadefs(repos, file, { ...none, merge: true, preferNew: true }, quiet);
    assert.equal((await repos.contents.property(ns.id, 'boot_menu'))?.definition.title, 'Changed', 'prefer-new overwrites');
    assert.equal((await repos.namespaces.get('OS::Compute::Libvirt'))?.description, 'from the file');
    assert.ok(await repos.contents.tag(ns.id, 'local-change'), 'prefer-new keeps what only the database has');

    await loadMetadefs(repos, path.join(SHIPPED, 'compute-libvirt.json'), { ...none, merge: true, overwrite: true }, quiet);
    const reloaded = (await repos.namespaces.get('OS::Compute::Libvirt'))!;
    assert.equal(await repos.contents.property(reloaded.id, 'brand_new'), null, 'overwrite drops what the file does not hold');
    assert.equal(await repos.contents.tag(reloaded.id, 'local-change'), null);
    assert.equal(reloaded.description, original.description);

    await assert.rejects(loadMetadefs(repos, SHIPPED, { ...none, preferNew: true }, quiet), /used together with --merge/);
    await assert.rejects(loadMetadefs(repos, SHIPPED, { merge: true, preferNew: true, overwrite: true }, quiet), /at most one/);
    writeFileSync(path.join(dir, 'broken.json'), '{ not json');
    const lines: string[] = [];
    assert.deepEqual(await loadMetadefs(repos, path.join(dir, 'broken.json'), none, (l) => lines.push(l)), { loaded: 0, skipped: 0, failed: 1 });
    assert.match(lines[0], /broken\.json: skipped/);
  });

  test('a directory load names each file it cannot take and loads the rest: no name, a null, a string property, a dangling link', async () => {
    const mixed = mkdtempSync(path.join(tmpdir(), 'gaze-metadefs-mixed-'));
    const files: Record<string, unknown> = {
      'a-good.json': { namespace: 'Mixed::Good', tags: [{ name: 't1' }] },
      'b-nameless-object.json': { namespace: 'Mixed::NoObjectName', objects: [{ description: 'x' }] },
      'c-nameless-association.json': { namespace: 'Mixed::NoAssociationName', resource_type_associations: [{ prefix: 'p_' }] },
      'd-null.json': null,
      'e-string-property.json': { namespace: 'Mixed::StringProperty', properties: { p: 'notanobject' } },
      'f-good.json': { namespace: 'Mixed::AlsoGood' },
    };
    for (const [name, doc] of Object.entries(files)) writeFileSync(path.join(mixed, name), JSON.stringify(doc));
    symlinkSync(path.join(mixed, 'gone.json'), path.join(mixed, 'g-dangling.json'));
    const lines: string[] = [];
    assert.deepEqual(await loadMetadefs(repos, mixed, none, (l) => lines.push(l)), { loaded: 2, skipped: 0, failed: 4 });
    assert.deepEqual(
      lines.map((l) => l.replace(`${mixed}/`, '')).sort(), // in the directory's own order, as Glance's loader reads it
      [
        'b-nameless-object.json: skipped: an object has no name',
        'c-nameless-association.json: skipped: a resource type association has no name',
        'd-null.json: skipped: it is not a namespace (a JSON object)',
        'e-string-property.json: skipped: property p is not a definition (a JSON object)',
      ],
    );
    const loaded = (await all()).filter((n) => n.namespace.startsWith('Mixed::'));
    assert.deepEqual(loaded.map((n) => n.namespace).sort(), ['Mixed::AlsoGood', 'Mixed::Good']);
    // The tests after this one count the namespaces of Debian's files.
    for (const ns of loaded) await repos.namespaces.delete(ns.id);
    rmSync(mixed, { recursive: true, force: true });
  });

  test('export writes one file per namespace (no owner); unload removes everything; the export loads back', { skip }, async () => {
    const out = path.join(dir, 'export');
    const said: string[] = [];
    const files = await exportMetadefs(repos, out, (line) => said.push(line));
    assert.equal(files.length, 33);
    assert.equal(said.length, 0, 'nothing was there to overwrite');
    // A second export over the first says what it overwrites, as glance-manage says it.
    await exportMetadefs(repos, out, (line) => said.push(line));
    assert.equal(said.length, 33);
    assert.ok(said.every((line) => line.startsWith(`Overwriting: ${out}/`)));
    assert.ok(readdirSync(out).includes('libvirtDriverOptionsforImages.json'));
    const doc = JSON.parse(readFileSync(path.join(out, 'libvirtDriverOptionsforImages.json'), 'utf8'));
    assert.equal(doc.namespace, 'OS::Compute::LibvirtImage', 'named after the display name, letters and digits only');
    assert.ok(!('owner' in doc));
    await unloadMetadefs(repos.namespaces);
    assert.deepEqual(await all(), []);
    assert.deepEqual(await repos.namespaces.resourceTypes(), []);
    assert.deepEqual(await loadMetadefs(repos, out, none, quiet), { loaded: 33, skipped: 0, failed: 0 });
    rmSync(dir, { recursive: true, force: true });
  });

  test('tags loaded from a file (no updated_at) page by updated_at without repeating or losing any, both ways', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-metadef-tags-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'tags.json');
    writeFileSync(
      file,
      JSON.stringify({
        namespace: 'Paging::Tags',
        display_name: 'p',
        visibility: 'public',
        protected: false,
        tags: [{ name: 't1' }, { name: 't2' }, { name: 't3' }],
      }),
    );
    assert.deepEqual(await loadMetadefs(repos, file, none, quiet), { loaded: 1, skipped: 0, failed: 0 });
    const ns = (await repos.namespaces.get('Paging::Tags'))!;
    await repos.contents.insertTag(ns.id, 't4');
    for (const sortDir of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let marker: Awaited<ReturnType<typeof repos.contents.tags>>[number] | undefined;
      for (let page = 0; page < 10; page++) {
        const [tag] = await repos.contents.tags(ns.id, { sortKey: 'updated_at', sortDir, limit: 1, marker });
        if (!tag) break;
        seen.push(tag.name);
        marker = tag;
      }
      assert.deepEqual([...seen].sort(), ['t1', 't2', 't3', 't4'], `${sortDir}: ${seen.join(',')}`);
      assert.equal(seen.at(sortDir === 'asc' ? -1 : 0), 't4', 'no updated_at sorts lowest');
    }
  });
});
