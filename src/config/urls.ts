/** URL helpers shared by the checks and the warnings. */

export function parseUrl (value: string): URL | undefined {
  return URL.canParse(value) ? new URL(value) : undefined
}

export function withoutSlash (value: string): string {
  return value.endsWith('/') ? value.slice(0, -1) : value
}

/** design.md §5: loopback is 127.0.0.0/8, ::1 and localhost (WHATWG URL has already normalised `127.1`). */
export function isLoopback (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}
