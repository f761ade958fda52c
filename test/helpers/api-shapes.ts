// The shapes of Image API answers the end-to-end tests read (only the fields they look at are typed).

/** An image as GET /v2/images/{id} shows it. */
export interface ApiImage {
  id: string;
  name: string;
  status: string;
  owner: string;
  visibility: string;
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  disk_format: string | null;
  container_format: string | null;
  stores?: string;
  [key: string]: unknown;
}

/** A task as GET /v2/images/{id}/tasks shows it (Glance's raw row). */
export interface RawTask {
  id: string;
  type: string;
  status: string;
  owner: string;
  user_id: string | null;
  image_id: string | null;
  input: { image_id?: string; import_req?: { method: { name: string; uri?: string } & Record<string, unknown> }; backend?: unknown[] } | null;
  result: { image_id: string } | null;
  message: string;
}
