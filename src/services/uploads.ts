/** Uploads streaming right now in this process, so that a delete can stop them at once. */
export class UploadRegistry {
  private readonly active = new Map<string, Set<AbortController>>();

  begin(imageId: string): AbortController {
    const controller = new AbortController();
    let set = this.active.get(imageId);
    if (!set) this.active.set(imageId, (set = new Set()));
    set.add(controller);
    return controller;
  }

  end(imageId: string, controller: AbortController): void {
    const set = this.active.get(imageId);
    set?.delete(controller);
    if (set && set.size === 0) this.active.delete(imageId);
  }

  /** Whether an upload or stage of the image is being written by this process. */
  has(imageId: string): boolean {
    return this.active.has(imageId);
  }

  abort(imageId: string): void {
    for (const c of this.active.get(imageId) ?? []) c.abort(new Error(`image ${imageId} was deleted`));
  }
}
