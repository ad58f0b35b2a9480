import { buildDevIdp, DEFAULT_DEV_IDP_YAML, devIdpLoggerOptions, parseDevIdpConfig, type DevIdp } from '../../src/dev-idp/index.ts'
import { captureLogs } from './log-capture.ts'

export interface StartedDevIdp {
  readonly idp: DevIdp
  /** the issuer identifier (the bound URL unless the YAML sets `issuer`) */
  readonly issuer: string
  /** the bound URL */
  readonly url: string
  /** every log line, raw, for "no secret anywhere" checks */
  readonly rawLogs: string[]
  /** every log line, parsed */
  readonly logs: Record<string, unknown>[]
  close (): Promise<void>
}

/** The built-in configuration without its fixed issuer and listen address. */
export const DEFAULT_TEST_YAML = DEFAULT_DEV_IDP_YAML
  .replace(/^issuer: .*\n/m, '')
  .replace(/^listen: .*\n/m, '')

/**
 * Builds and starts a real dev IdP on 127.0.0.1 and a free port, logging (at debug, with the
 * production redaction) to memory. The YAML must not set `listen`; without `issuer` the issuer is
 * the bound URL. Default: the built-in configuration.
 */
export async function startDevIdp (yaml: string = DEFAULT_TEST_YAML): Promise<StartedDevIdp> {
  const config = parseDevIdpConfig(`${yaml}\nlisten: { host: 127.0.0.1, port: 0 }\n`, { source: '<test>' })
  const { stream, logs, rawLogs } = captureLogs()
  const idp = await buildDevIdp(config, { logger: devIdpLoggerOptions('debug', stream) })
  const url = await idp.listen()
  return { idp, issuer: idp.issuer, url, rawLogs, logs, close: () => idp.close() }
}

/** An audience (resource AS issuer) for tests that never call it. */
export const TEST_AUDIENCE = 'http://127.0.0.1:8080'

/**
 * Users alice (eng), bob (sales), dave (no group); clients demo-client, other-client (known at the
 * resource AS as other-at-as) and outsider-client (in no policy); resources `{audience}/mcp/everything`
 * (eng: read+write, sales: read) and `{audience}/mcp/eng-only` (eng, demo-client or other-client only).
 */
export function testIdpYaml (audience: string = TEST_AUDIENCE): string {
  return `
users:
  - { username: alice, password: alice-pw-1, email: alice@example.com, name: Alice, groups: [eng] }
  - { username: bob, password: bob-pw-2, email: bob@example.com, groups: [sales] }
  - { username: dave, password: dave-pw-3, email: dave@example.com }
clients:
  - { clientId: demo-client, secret: demo-secret-9 }
  - { clientId: other-client, secret: other-secret-8, idJagClientId: other-at-as }
  - { clientId: outsider-client, secret: outsider-secret-7 }
policy:
  - { audience: "${audience}", resources: ["${audience}/mcp/everything"], groups: [eng], scopes: [tools.read, tools.write] }
  - { audience: "${audience}", resources: ["${audience}/mcp/everything"], groups: [sales], scopes: [tools.read] }
  - { audience: "${audience}", resources: ["${audience}/mcp/eng-only"], groups: [eng], clients: [demo-client, other-client], scopes: [tools.read] }
`
}

/** Every password and secret of testIdpYaml, for "never echoed, never logged" checks. */
export const TEST_SECRETS = ['alice-pw-1', 'bob-pw-2', 'dave-pw-3', 'demo-secret-9', 'other-secret-8', 'outsider-secret-7']

export interface TokenResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: Record<string, unknown>
}

/** POSTs to `{url}{path}`; a record or URLSearchParams body is sent form-encoded. */
export async function postToken (
  url: string, body: string | Record<string, string> | URLSearchParams, headers: Record<string, string> = {}, path = '/token'
): Promise<TokenResponse> {
  const isForm = typeof body !== 'string'
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { ...(isForm && { 'content-type': 'application/x-www-form-urlencoded' }), ...headers },
    body: isForm ? new URLSearchParams(body).toString() : body,
  })
  const text = await response.text()
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch { parsed = undefined }
  const record = typeof parsed === 'object' && parsed !== null ? Object.fromEntries(Object.entries(parsed)) : {}
  return { status: response.status, headers: response.headers, text, body: record }
}
