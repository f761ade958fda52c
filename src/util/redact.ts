/**
 * A URL as a message may show it: each password of its userinfo as **** (a database connection, a
 * transport_url with several hosts), as `gaze config show` shows the whole option.
 */
export function withoutPasswords(url: string): string {
  return url.replace(/([/,][^/@:,]*:)[^@/,]*@/g, '$1****@');
}
