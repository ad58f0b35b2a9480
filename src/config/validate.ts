/**
 * Schema validation: ajv with every error collected and defaults filled in, and its errors
 * rewritten as problems a person can act on (`servers.github.upstream.timeout: unknown key;
 * use headersTimeoutMs / bodyTimeoutMs`).
 */
import { Ajv, type ErrorObject } from 'ajv'
import type { PathSegment } from './errors.ts'
import type { RawConfig } from './raw.ts'
import { configSchema } from './schema.ts'

export interface SchemaProblem {
  readonly path: readonly PathSegment[]
  readonly message: string
  /** An unknown key leaves the known fields intact, so it does not stop the cross-field checks. */
  readonly unknownKey: boolean
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true, verbose: true })
ajv.addKeyword({ keyword: 'errorText', schemaType: 'string' })
const validator = ajv.compile<RawConfig>(configSchema)

/** Validates `data` in place (defaults are written into it) and returns every problem found. */
export function validateSchema (data: unknown): SchemaProblem[] {
  if (validator(data)) return []
  return (validator.errors ?? []).flatMap((error) => describeError(error, data))
}

function describeError (error: ErrorObject, data: unknown): SchemaProblem[] {
  // A propertyNames failure is reported once, by its outer error, which knows the offending key.
  if (error.schemaPath.includes('/propertyNames/') || error.keyword === 'if') return []
  const path = pointerToPath(error.instancePath, data)
  const params: Record<string, unknown> = error.params
  const custom = errorText(error.parentSchema)
  const problem = (at: readonly PathSegment[], message: string, unknownKey = false): SchemaProblem[] => [{ path: at, message, unknownKey }]
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty'])
      return problem([...path, key], unknownKeyMessage([...path, key], allowedKeys(error.parentSchema)), true)
    }
    case 'required':
      return problem([...path, String(params['missingProperty'])], 'is required')
    case 'type':
      return problem(path, `must be ${typeName(params['type'])}`)
    case 'propertyNames':
      return problem([...path, String(params['propertyName'])], errorText(error.schema) ?? 'is not an allowed name')
    case 'enum':
      return problem(path, custom ?? `must be one of: ${arrayOf(params['allowedValues']).join(', ')}`)
    case 'minimum':
      return problem(path, custom ?? `must be ≥ ${String(params['limit'])}`)
    case 'maximum':
      return problem(path, custom ?? `must be ≤ ${String(params['limit'])}`)
    case 'minLength':
      return problem(path, params['limit'] === 1 ? 'must not be empty' : (custom ?? `must be at least ${String(params['limit'])} characters`))
    case 'minProperties':
      return problem(path, 'must not be empty')
    case 'minItems':
      return problem(path, params['limit'] === 1 ? 'must not be empty' : `must have at least ${String(params['limit'])} items`)
    case 'uniqueItems':
      return problem(path, `must not repeat an item (items ${String(params['j'])} and ${String(params['i'])} are equal)`)
    default:
      return problem(path, custom ?? error.message ?? `fails ${error.keyword}`)
  }
}

/** ajv's instancePath is a JSON pointer; array indices become `[n]` by looking at the data. */
export function pointerToPath (pointer: string, data: unknown): PathSegment[] {
  const path: PathSegment[] = []
  let node = data
  for (const raw of pointer.split('/').slice(1)) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (Array.isArray(node)) {
      path.push(Number(token))
      node = node[Number(token)]
    } else {
      path.push(token)
      node = isRecord(node) ? node[token] : undefined
    }
  }
  return path
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function errorText (schema: unknown): string | undefined {
  return isRecord(schema) && typeof schema['errorText'] === 'string' ? schema['errorText'] : undefined
}

function allowedKeys (schema: unknown): string[] {
  return isRecord(schema) && isRecord(schema['properties']) ? Object.keys(schema['properties']) : []
}

function arrayOf (value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value]
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  'string,array': 'a string or a list of strings',
}

function typeName (type: unknown): string {
  const key = arrayOf(type).map(String).join(',')
  return TYPE_NAMES[key] ?? key
}

// --- pointers for keys that were renamed or put in the wrong place -------------------------

const RULE_LISTS = ['tools', 'prompts', 'resources']
/** `*` matches one segment (a server name or a list index). */
const RENAMED: readonly (readonly [pattern: string, hint: string])[] = [
  ['servers.*.upstream.timeout', 'use headersTimeoutMs / bodyTimeoutMs'],
  ['servers.*.upstream.requestTimeout', 'use headersTimeoutMs / bodyTimeoutMs (HTTP) or requestTimeoutMs (stdio)'],
  ['servers.*.upstream.type', 'use transport'],
  ['servers.*.upstream.endpoint', 'use url'],
  ['servers.*.rules', 'use tools'],
  ['servers.*.allowedTools', 'use tools'],
  ['servers.*.policy', 'use tools (and prompts / resources)'],
  ...['url', 'command', 'args', 'env', 'headers', 'transport'].map((key) => [`servers.*.${key}`, 'put it under upstream'] as const),
  ...RULE_LISTS.flatMap((list) => [
    [`servers.*.${list}.*.names`, 'use allow or deny'] as const,
    [`servers.*.${list}.*.effect`, 'use allow or deny'] as const,
    [`servers.*.${list}.*.name`, 'use allow or deny'] as const,
  ]),
  ['authorization.clients.*.clientSecret', 'use secret'],
  ['authorization.clients.*.method', 'use auth'],
  ['authorization.clients.*.tokenEndpointAuthMethod', 'use auth'],
  ['authorization.identityProviders.*.clients', 'use allowedClients'],
  ['authorization.identityProviders.*.secret', 'use login.clientSecret'],
  ['authorization.idps', 'use identityProviders'],
  ['authorization.trustedIssuers', 'use identityProviders'],
  ['authorization.keys', 'use signingKeys'],
  ['authorization.tokenTtlSeconds', 'use accessTokenTtlSeconds'],
  ['listen.origins', 'use allowedOrigins'],
  ['listen.cors', 'use allowedOrigins'],
  ['listen.legacySse', 'removed: old HTTP+SSE clients are not served; they connect to /mcp/{server} (Streamable HTTP)'],
  ['issuer', 'use authorization.issuer'],
  ['clients', 'put it under authorization'],
  ['identityProviders', 'put it under authorization'],
  ['signingKeys', 'put it under authorization'],
  ['host', 'use listen.host'],
  ['port', 'use listen.port'],
  ['maxBodyBytes', 'use limits.maxBodyBytes'],
  ['redis', 'use store.url'],
  ['metrics', 'use admin'],
  ['upstreams', 'use servers'],
  ['mcpServers', 'use servers'],
]

function unknownKeyMessage (path: readonly PathSegment[], allowed: readonly string[]): string {
  const hint = renamedHint(path) ?? nearMiss(String(path.at(-1)), allowed)
  if (hint !== undefined) return `unknown key; ${hint}`
  return allowed.length > 0 ? `unknown key (expected one of: ${allowed.join(', ')})` : 'unknown key'
}

function renamedHint (path: readonly PathSegment[]): string | undefined {
  for (const [pattern, hint] of RENAMED) {
    const parts = pattern.split('.')
    if (parts.length === path.length && parts.every((part, i) => part === '*' || part === path[i])) return hint
  }
  return undefined
}

/** Catches snake_case, case slips, a missing plural and a missing unit suffix (`connectTimeout`). */
function nearMiss (key: string, allowed: readonly string[]): string | undefined {
  const fold = (name: string): string => name.toLowerCase().replaceAll(/[_-]/g, '')
  const folded = fold(key)
  const match = allowed.find((name) => {
    const candidate = fold(name)
    return candidate === folded || ['s', 'ms', 'seconds'].some((suffix) => candidate === folded + suffix)
  })
  return match === undefined ? undefined : `did you mean ${match}?`
}
