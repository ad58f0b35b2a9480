import { parseArgs } from 'node:util'
import { DEMO_CLIENT, DEMO_PASSWORDS, GRANT_PASSWORD, GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ID_JAG, TOKEN_TYPE_ID_TOKEN } from '../dev-idp/index.ts'
import type { CliIo } from './io.ts'

const GRANT_JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const TIMEOUT_MS = 10_000

const USAGE = `usage: portcullis token --idp URL --user U --server MCP_URL [options]

Walks the client side of Enterprise-Managed Authorization and prints the access token alone
on stdout, so that TOKEN=$(portcullis token ...) works:
  1. the MCP server's protected-resource metadata (RFC 9728) names its authorization server
  2. that server's metadata (RFC 8414) gives its token endpoint
  3. the IdP (OIDC discovery) issues an ID token for U (grant_type=password)
  4. the IdP exchanges it for an ID-JAG (RFC 8693) for that authorization server and resource
  5. the authorization server exchanges the ID-JAG for an access token (RFC 7523 jwt-bearer)

options:
  --idp URL                the IdP's issuer (e.g. http://127.0.0.1:8081)
  --user U                 the user to log in as
  --password P             default: the dev IdP's demo password for alice (${DEMO_PASSWORDS['alice'] ?? ''}) or bob (${DEMO_PASSWORDS['bob'] ?? ''})
  --server MCP_URL         the MCP endpoint (e.g. http://127.0.0.1:8080/mcp/everything)
  --client-id C            client at the IdP (default ${DEMO_CLIENT.clientId})
  --client-secret S        its secret (default ${DEMO_CLIENT.secret})
  --as-client-id C         client at the authorization server (default ${DEMO_CLIENT.clientId})
  --as-client-secret S     its secret (default ${DEMO_CLIENT.secret})
  --scope "a b"            scopes to ask for (default: whatever the policy grants)
Both clients authenticate with client_secret_basic. Exit status: 0 ok, 1 failure, 2 usage error.
`

type Json = Record<string, unknown>
interface Credentials { readonly id: string; readonly secret: string }

/** A failed step: the OAuth error and description (or what went wrong), never a credential or token. */
class StepError extends Error {}

/** `portcullis token`: returns 0 with the access token on stdout, 1 on failure, 2 on a usage error. */
export async function runToken (argv: string[], io: CliIo): Promise<number> {
  let options: ReturnType<typeof parseOptions>
  try {
    options = parseOptions(argv)
  } catch (error) {
    io.stderr.write(`portcullis token: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
    return 2
  }
  if (options === 'help') {
    io.stdout.write(USAGE)
    return 0
  }
  try {
    io.stdout.write(`${await walk(options)}\n`)
    return 0
  } catch (error) {
    if (!(error instanceof StepError)) throw error
    io.stderr.write(`portcullis token: ${error.message}\n`)
    return 1
  }
}

interface Options {
  readonly idp: string
  readonly user: string
  readonly password: string
  readonly server: string
  readonly idpClient: Credentials
  readonly asClient: Credentials
  readonly scope?: string
}

function parseOptions (argv: string[]): Options | 'help' {
  const text = { type: 'string' } as const
  const { values } = parseArgs({
    args: argv,
    options: {
      idp: text,
      user: text,
      password: text,
      server: text,
      scope: text,
      'client-id': text,
      'client-secret': text,
      'as-client-id': text,
      'as-client-secret': text,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help === true) return 'help'
  const { idp, user, server } = values
  if (idp === undefined || user === undefined || server === undefined) throw new Error('--idp, --user and --server are required')
  for (const [name, value] of [['--idp', idp], ['--server', server]] as const) {
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new Error(`${name} must be an http(s) URL`)
  }
  const password = values.password ?? DEMO_PASSWORDS[user]
  if (password === undefined) throw new Error('--password is required (only the demo users alice and bob have a default)')
  return {
    idp,
    user,
    password,
    server,
    idpClient: { id: values['client-id'] ?? DEMO_CLIENT.clientId, secret: values['client-secret'] ?? DEMO_CLIENT.secret },
    asClient: { id: values['as-client-id'] ?? DEMO_CLIENT.clientId, secret: values['as-client-secret'] ?? DEMO_CLIENT.secret },
    ...(values.scope !== undefined && { scope: values.scope }),
  }
}

/** Discovers everything before sending any credential; returns the access token. */
async function walk (o: Options): Promise<string> {
  const serverUrl = new URL(o.server)
  const prm = await getJson(wellKnown(serverUrl, 'oauth-protected-resource'), 'protected-resource metadata')
  const resource = prm['resource']
  if (typeof resource !== 'string' || (resource !== o.server && resource !== serverUrl.href)) {
    throw new StepError('protected-resource metadata: its resource does not match --server (RFC 9728 §3.3)')
  }
  const asIssuer = firstString(prm['authorization_servers'])
  if (asIssuer === undefined || !URL.canParse(asIssuer)) throw new StepError('protected-resource metadata: authorization_servers[0] is not a URL')
  const asMeta = await getJson(wellKnown(new URL(asIssuer), 'oauth-authorization-server'), 'authorization server metadata')
  const issuer = sameIssuer(asMeta['issuer'], asIssuer, 'authorization server metadata')
  const grants = asMeta['grant_types_supported']
  if (Array.isArray(grants) && !grants.includes(GRANT_JWT_BEARER)) {
    throw new StepError('authorization server metadata: grant_types_supported does not include jwt-bearer')
  }
  const asTokenEndpoint = endpoint(asMeta, 'authorization server metadata')
  const idpMeta = await getJson(`${o.idp.replace(/\/$/, '')}/.well-known/openid-configuration`, 'IdP discovery')
  sameIssuer(idpMeta['issuer'], o.idp, 'IdP discovery')
  const idpTokenEndpoint = endpoint(idpMeta, 'IdP discovery')

  const login = await postForm(idpTokenEndpoint, o.idpClient, 'login at the IdP (password grant)', {
    grant_type: GRANT_PASSWORD, username: o.user, password: o.password, scope: 'openid email profile',
  })
  const idToken = stringField(login, 'id_token', 'login at the IdP')
  const exchange = await postForm(idpTokenEndpoint, o.idpClient, 'token exchange at the IdP', {
    grant_type: GRANT_TOKEN_EXCHANGE,
    requested_token_type: TOKEN_TYPE_ID_JAG,
    subject_token: idToken,
    subject_token_type: TOKEN_TYPE_ID_TOKEN,
    audience: issuer,
    resource,
    ...(o.scope !== undefined && { scope: o.scope }),
  })
  if (exchange['issued_token_type'] !== TOKEN_TYPE_ID_JAG) throw new StepError('token exchange at the IdP: issued_token_type is not id-jag')
  const idJag = stringField(exchange, 'access_token', 'token exchange at the IdP')
  const grant = await postForm(asTokenEndpoint, o.asClient, 'jwt-bearer grant at the authorization server', {
    grant_type: GRANT_JWT_BEARER, assertion: idJag, resource, ...(o.scope !== undefined && { scope: o.scope }),
  })
  return stringField(grant, 'access_token', 'jwt-bearer grant at the authorization server')
}

/** RFC 9728 §3.1 / RFC 8414 §3.1: the well-known segment goes between the host and the path. */
function wellKnown (url: URL, name: string): string {
  const path = url.pathname === '/' ? '' : url.pathname
  return `${url.origin}/.well-known/${name}${path}${url.search}`
}

function sameIssuer (value: unknown, expected: string, step: string): string {
  if (typeof value === 'string' && (value === expected || `${value}/` === expected || value === `${expected}/`)) return value
  throw new StepError(`${step}: issuer does not match ${expected}`)
}

function endpoint (meta: Json, step: string): string {
  const value = meta['token_endpoint']
  if (typeof value !== 'string' || !URL.canParse(value)) throw new StepError(`${step}: token_endpoint is missing`)
  return value
}

function firstString (value: unknown): string | undefined {
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined
}

function stringField (body: Json, name: string, step: string): string {
  const value = body[name]
  if (typeof value !== 'string' || value === '') throw new StepError(`${step}: the response has no ${name}`)
  return value
}

async function getJson (url: string, step: string): Promise<Json> {
  return await request(url, { method: 'GET', headers: { accept: 'application/json' } }, step)
}

/** client_secret_basic (RFC 6749 §2.3.1: id and secret are form-encoded before base64). */
async function postForm (url: string, client: Credentials, step: string, form: Record<string, string>): Promise<Json> {
  const target = new URL(url)
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(target.hostname) || target.hostname.endsWith('.localhost')
  if (target.protocol !== 'https:' && !loopback) throw new StepError(`${step}: refusing to send credentials over plain HTTP to ${target.origin}`)
  const encode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2)
  const basic = Buffer.from(`${encode(client.id)}:${encode(client.secret)}`).toString('base64')
  return await request(url, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
    body: new URLSearchParams(form).toString(),
  }, step)
}

/** The one place where a response body (untrusted) is read and narrowed. */
async function request (url: string, init: RequestInit, step: string): Promise<Json> {
  let response: Response
  let body: unknown
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) })
    body = await response.json().catch(() => undefined)
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error)
    throw new StepError(`${step}: cannot reach ${new URL(url).origin} (${cause})`)
  }
  const json: Json | undefined = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.fromEntries(Object.entries(body)) : undefined
  if (!response.ok) {
    const error = typeof json?.['error'] === 'string' ? json['error'] : undefined
    const description = typeof json?.['error_description'] === 'string' ? `: ${printable(json['error_description'])}` : ''
    throw new StepError(`${step} failed: HTTP ${response.status}${error === undefined ? '' : ` ${printable(error)}${description}`}`)
  }
  if (json === undefined) throw new StepError(`${step}: the response is not a JSON object`)
  return json
}

/** Text from a server, made safe for a terminal: no control characters, at most 300 characters. */
function printable (text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, ' ').slice(0, 300)
}
