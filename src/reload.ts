import { isDeepStrictEqual } from 'node:util'
import type { Config } from './config/types.ts'

/**
 * What a reload may change: the servers' upstreams (and their headers and timeouts) and their
 * tools/prompts/resources rules and mode. Everything the listeners, the authorization server and
 * the published metadata were built from needs a restart; a reload that changes any of it is
 * refused whole, naming each path, and the running config stays.
 * TODO(v2): rebuild the authorization context on reload too.
 */
export function restartOnlyChanges (current: Config, next: Config): string[] {
  const changes: string[] = []
  for (const key of ['publicUrl', 'listen', 'limits', 'admin', 'authorization', 'store'] as const) {
    if (!isDeepStrictEqual(current[key], next[key])) changes.push(key)
  }
  const names = new Set([...Object.keys(current.servers), ...Object.keys(next.servers)])
  for (const name of names) {
    const a = current.servers[name]
    const b = next.servers[name]
    if (a === undefined) changes.push(`servers.${name} (added)`)
    else if (b === undefined) changes.push(`servers.${name} (removed)`)
    else {
      for (const key of ['scopes', 'auth'] as const) if (!isDeepStrictEqual(a[key], b[key])) changes.push(`servers.${name}.${key}`)
    }
  }
  return changes
}
