/** Methods that are labels as themselves; anything else a client sends is `_other`. */
const KNOWN_METHODS = new Set([
  'initialize', 'ping', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/read',
  'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'logging/setLevel', 'completion/complete',
  'server/discover', 'subscriptions/listen', 'tasks/get', 'tasks/result', 'tasks/list', 'tasks/cancel',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
])

/** A bounded metric label for a JSON-RPC method. */
export function methodLabel (method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : '_other'
}
