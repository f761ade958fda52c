/**
 * A text (a URL, or a message holding URLs) as a message may show it: the password of each URL's
 * userinfo as **** (a database connection, a location, a transport_url with several hosts), as
 * `gaze config show` shows the whole option. A password may hold any character but `/`, `?` and `#`
 * (which end an authority); with several hosts, a comma starts the next one only where an `@` follows.
 */
export function withoutPasswords(text: string): string {
  return text.replace(/\/\/([^/?#\s]*)@/g, (_whole, userinfo: string) => `//${maskedUserinfo(userinfo)}@`);
}

/** `user:pass@host,user2:pass2` (every authority but its last host), each password masked. */
function maskedUserinfo(hosts: string): string {
  // Pieces that end in a host (`…@host`) start anew after the comma that follows them.
  const parts: string[] = [];
  for (const piece of hosts.split(',')) {
    const last = parts.length - 1;
    if (last >= 0 && !parts[last]!.includes('@')) parts[last] += `,${piece}`;
    else parts.push(piece);
  }
  return parts
    .map((part) => {
      const at = part.lastIndexOf('@');
      const userinfo = at < 0 ? part : part.slice(0, at);
      const colon = userinfo.indexOf(':');
      return colon < 0 ? part : `${userinfo.slice(0, colon)}:****${part.slice(userinfo.length)}`;
    })
    .join(',');
}
