/** Methods that are labels as themselves; anything else a client sends is `_other`. */
export const KNOWN_METHODS = [
  'initialize', 'ping', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/read',
  'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'logging/setLevel', 'completion/complete',
  'server/discover', 'subscriptions/listen', 'tasks/get', 'tasks/result', 'tasks/list', 'tasks/cancel',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
] as const

/** The `method` label of the request metrics: a known method, else `_other`. */
export type MethodLabel = typeof KNOWN_METHODS[number] | '_other'

const KNOWN = new Set<string>(KNOWN_METHODS)

/** A bounded metric label for a JSON-RPC method. */
export function methodLabel (method: string | undefined): MethodLabel {
  return method !== undefined && KNOWN.has(method) ? method as MethodLabel : '_other'
}
