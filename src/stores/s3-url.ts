/**
 * The key a location url names in `bucket`, or null when it is not one of that bucket: Gaze's
 * `s3://<bucket>/<key>`, or Glance's forms (`s3://`, `s3+http://`, `s3+https://`, with credentials
 * and host) on this store's endpoint host. Keys with empty, `.` or `..` parts are refused.
 */
export function s3KeyOf(url: string, bucket: string, endpointHost: string): string | null {
  const m = /^(s3|s3\+https?):\/\/(.*)$/i.exec(url);
  if (!m) return null;
  const scheme = m[1]!;
  let rest = m[2]!;
  // Glance's form: credentials (which may hold '/' in the secret) up to the last '@', then host.
  const at = rest.lastIndexOf('@');
  const glanceForm = at >= 0 || scheme.toLowerCase() !== 's3' || rest.split('/').length > 2;
  if (glanceForm) {
    if (at >= 0) rest = rest.slice(at + 1);
    const slash = rest.indexOf('/');
    if (slash < 0 || rest.slice(0, slash).toLowerCase() !== endpointHost) return null;
    rest = rest.slice(slash + 1);
  }
  const slash = rest.indexOf('/');
  if (slash < 0 || rest.slice(0, slash) !== bucket) return null;
  const key = rest.slice(slash + 1);
  if (key === '' || key.split('/').some((part) => part === '' || part === '.' || part === '..')) return null;
  return key;
}
