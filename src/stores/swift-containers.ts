import { request } from '../net/http-client.ts';
import type { Warn } from './driver.ts';
import { isTrue, type SwiftSession } from './swift-session.ts';

/**
 * A Swift store's two containers: the objects', and `<container>_segments` for the segments of static
 * large objects. Paths, creation on the first write, the segments of an object, and the cluster's
 * segment limit.
 */
export class SwiftContainers {
  readonly segmentContainer: string;
  private containersReady: Promise<void> | null = null;
  private maxSegments: Promise<number> | null = null;

  constructor(
    private readonly swift: SwiftSession,
    readonly container: string,
    private readonly createOnPut: boolean,
    private readonly warn: Warn,
  ) {
    this.segmentContainer = `${container}_segments`;
  }

  objectPath(container: string, name: string): string {
    return `/${encodeURIComponent(container)}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Names of the segments of the large object now at key (ours only), to delete once it is replaced. */
  async oldSegments(key: string): Promise<string[]> {
    const path = this.objectPath(this.container, key);
    const head = await this.swift.call('HEAD', path);
    await head.body.dump();
    if (head.statusCode !== 200 || !isTrue(head.headers['x-static-large-object'])) return [];
    const res = await this.swift.call('GET', `${path}?multipart-manifest=get`);
    if (res.statusCode !== 200) {
      await res.body.dump();
      return [];
    }
    const manifest = (await res.body.json()) as { name?: string }[];
    const prefix = `/${this.segmentContainer}/${key}/`;
    return manifest
      .map((s) => s.name ?? '')
      .filter((name) => name.startsWith(prefix))
      .map((name) => name.slice(this.segmentContainer.length + 2));
  }

  /** The names in a container that begin with `prefix` ([] when the container does not exist yet). */
  async names(container: string, prefix = ''): Promise<string[]> {
    const names: string[] = [];
    // Swift lists at most 10,000 names per request; the last name is the marker of the next page.
    for (let marker = ''; ;) {
      const query = `?format=json&prefix=${encodeURIComponent(prefix)}&marker=${encodeURIComponent(marker)}`;
      const res = await this.swift.call('GET', `/${encodeURIComponent(container)}${query}`);
      if (res.statusCode === 404) {
        await res.body.dump();
        return names;
      }
      await this.swift.expect(res, [200, 204], `listing container ${container}`);
      const page = res.statusCode === 204 ? [] : ((await res.body.json()) as { name: string }[]);
      if (page.length === 0) return names;
      names.push(...page.map((entry) => entry.name));
      marker = page[page.length - 1]!.name;
    }
  }

  /**
   * The segments of a dynamic large object, as Glance writes one (`<id>-00001`… beside the manifest,
   * which names `<container>/<id>-`), deleted before the manifest as Glance does, so that a failure
   * leaves the manifest for the next try. A manifest naming anything else is left to its owner.
   */
  async deleteDynamicSegments(container: string, key: string, manifest: string): Promise<void> {
    if (decodeURIComponent(manifest) !== `${container}/${key}-`) {
      this.warn(`swift: the manifest ${container}/${key} names segments ${manifest}, which are not deleted with it`);
      return;
    }
    const names = await this.names(container, `${key}-`);
    for (const name of names) {
      const res = await this.swift.call('DELETE', this.objectPath(container, name));
      await this.swift.expect(res, [204, 404], `deleting segment ${name}`);
    }
  }

  /** Deletes segments (best effort: a failure here must not fail the write that is being finished or undone). */
  async removeSegments(names: string[]): Promise<void> {
    const queue = [...names];
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        try {
          const res = await this.swift.call('DELETE', this.objectPath(this.segmentContainer, name));
          await res.body.dump();
          if (res.statusCode !== 204 && res.statusCode !== 404) this.warn(`swift: could not delete segment ${name}: HTTP ${res.statusCode}`);
        } catch (err) {
          this.warn(`swift: could not delete segment ${name}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  ensureContainers(): Promise<void> {
    if (!this.createOnPut) return Promise.resolve();
    this.containersReady ??= (async () => {
      for (const container of [this.container, this.segmentContainer]) {
        const res = await this.swift.call('PUT', `/${encodeURIComponent(container)}`);
        await this.swift.expect(res, [201, 202], `creating container ${container}`);
      }
    })().catch((err: unknown) => {
      this.containersReady = null; // try again on the next write
      throw err;
    });
    return this.containersReady;
  }

  /** slo's max_manifest_segments, from the cluster's /info (Swift's default, 1000, when unknown). */
  segmentLimit(): Promise<number> {
    this.maxSegments ??= (async () => {
      try {
        const { storageUrl } = await this.swift.login();
        const res = await request(`${new URL(storageUrl).origin}/info`, { agents: this.swift.agents });
        if (res.statusCode !== 200) {
          await res.body.dump();
          return 1000; // /info disabled: assume Swift's default
        }
        const info = (await res.body.json()) as { slo?: { max_manifest_segments?: number } };
        return info.slo?.max_manifest_segments ?? 1000;
      } catch {
        this.maxSegments = null; // unreachable now: ask again next time
        return 1000;
      }
    })();
    return this.maxSegments;
  }
}
