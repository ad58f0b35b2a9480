/**
 * The dev IdP's YAML shape as one closed JSON Schema (every object `additionalProperties: false`),
 * with its defaults, and ajv's errors rewritten as problems with paths. Rules that relate one
 * field to another live in `config.ts`.
 */
import { Ajv, type ErrorObject } from 'ajv'
import type { PathSegment } from '../config/errors.ts'
import { pointerToPath } from '../config/validate.ts'

export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number]

export const DEV_IDP_DEFAULTS = {
  listen: { host: '127.0.0.1', port: 8081 },
  signing: { alg: 'ES256' },
  idTokenTtlSeconds: 600, // 10 min
  idJagTtlSeconds: 300, // 5 min, as in the EMA examples
} as const

type Schema = Record<string, unknown>

const text: Schema = { type: 'string', minLength: 1 }
const closed = (properties: Record<string, Schema>, required: string[] = []): Schema =>
  ({ type: 'object', properties, additionalProperties: false, required })
const uniqueList = (items: Schema, value?: readonly unknown[]): Schema =>
  ({ type: 'array', items, uniqueItems: true, ...(value !== undefined && { default: value }) })
/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const scopeToken: Schema = { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$', errorText: 'must be a scope token (printable ASCII, no spaces or quotes)' }
const seconds = (maximum: number, value: number): Schema => ({ type: 'integer', minimum: 1, maximum, default: value })

const user = closed({
  username: text,
  sub: { type: 'string', pattern: '^[\\x21-\\x7E]{1,255}$', errorText: 'must be 1 to 255 printable ASCII characters, no spaces' },
  password: text,
  email: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$', errorText: 'must be an email address' },
  name: text,
  groups: uniqueList(text, []),
}, ['username', 'password', 'email'])

const client = closed({
  clientId: text,
  secret: text,
  redirectUris: uniqueList(text, []),
  idJagClientId: text,
}, ['clientId', 'secret'])

const grant = closed({
  audience: text,
  resources: { ...uniqueList(text), minItems: 1 },
  groups: { ...uniqueList(text), minItems: 1 },
  users: { ...uniqueList(text), minItems: 1 },
  clients: { ...uniqueList(text), minItems: 1 },
  scopes: uniqueList(scopeToken),
}, ['audience', 'resources', 'scopes'])

export const devIdpSchema: Schema = closed({
  issuer: text,
  listen: {
    ...closed({
      host: { ...text, default: DEV_IDP_DEFAULTS.listen.host },
      port: { type: 'integer', minimum: 0, maximum: 65_535, default: DEV_IDP_DEFAULTS.listen.port },
    }),
    default: {},
  },
  signing: {
    ...closed({
      alg: { enum: [...SIGNING_ALGORITHMS], default: DEV_IDP_DEFAULTS.signing.alg },
      keysFile: text,
    }),
    default: {},
  },
  idTokenTtlSeconds: seconds(86_400, DEV_IDP_DEFAULTS.idTokenTtlSeconds),
  idJagTtlSeconds: seconds(3_600, DEV_IDP_DEFAULTS.idJagTtlSeconds),
  users: { type: 'array', items: user, default: [] },
  clients: { type: 'array', items: client, default: [] },
  policy: { type: 'array', items: grant, default: [] },
})

// verbose: errors carry their parentSchema, whose property names and errorText the messages use
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true, verbose: true })
ajv.addKeyword({ keyword: 'errorText', schemaType: 'string' })
const validator = ajv.compile(devIdpSchema)

export interface LocatedProblem {
  readonly path: readonly PathSegment[]
  readonly message: string
}

/** Validates `data` in place (defaults are written into it) and returns every problem found. */
export function validateDevIdpSchema (data: unknown): LocatedProblem[] {
  if (validator(data)) return []
  return (validator.errors ?? []).map((error) => describe(error, data))
}

const RENAMED: Record<string, string> = {
  client_id: 'clientId',
  clientSecret: 'secret',
  client_secret: 'secret',
  redirect_uris: 'redirectUris',
  resource: 'resources',
  audiences: 'audience',
  scope: 'scopes',
  group: 'groups',
  alg: 'signing.alg',
  port: 'listen.port',
}

function describe (error: ErrorObject, data: unknown): LocatedProblem {
  const path = pointerToPath(error.instancePath, data)
  const params: Record<string, unknown> = error.params
  const custom = isRecord(error.parentSchema) && typeof error.parentSchema['errorText'] === 'string' ? error.parentSchema['errorText'] : undefined
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty'])
      const allowed = isRecord(error.parentSchema) && isRecord(error.parentSchema['properties']) ? Object.keys(error.parentSchema['properties']) : []
      const hint = RENAMED[key] === undefined ? `expected one of: ${allowed.join(', ')}` : `did you mean ${RENAMED[key]}?`
      return { path: [...path, key], message: `unknown key (${hint})` }
    }
    case 'required': return { path: [...path, String(params['missingProperty'])], message: 'is required' }
    case 'type': return { path, message: `must be ${TYPE_NAMES[String(params['type'])] ?? String(params['type'])}` }
    case 'enum': return { path, message: `must be one of: ${(Array.isArray(params['allowedValues']) ? params['allowedValues'] : []).join(', ')}` }
    case 'minimum': return { path, message: `must be ≥ ${String(params['limit'])}` }
    case 'maximum': return { path, message: `must be ≤ ${String(params['limit'])}` }
    case 'minLength':
    case 'minItems': return { path, message: 'must not be empty' }
    case 'uniqueItems': return { path, message: `must not repeat an item (items ${String(params['j'])} and ${String(params['i'])} are equal)` }
    default: return { path, message: custom ?? error.message ?? `fails ${error.keyword}` }
  }
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', integer: 'an integer', boolean: 'true or false', object: 'a mapping', array: 'a list',
}

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
