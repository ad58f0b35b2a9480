import t from 'tap'
import { ConfigError, configWarnings, parseConfig } from '../../src/config/load.ts'

const base = (auth: string): string => `
publicUrl: https://gw.example.com
authorization:
${auth}
servers:
  s: { upstream: { url: http://up.internal/mcp }, tools: [{ allow: ["*"] }] }
`

function problemsOf (text: string): string[] {
  try {
    parseConfig(text, { source: '<test>', env: {} })
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`)
    throw error
  }
  return []
}

t.test('public clients and redirect URIs for the federated login', async (t) => {
  const config = parseConfig(base(`
  clients:
    - { clientId: app, auth: none, redirectUris: ["http://127.0.0.1:7777/callback", "https://app.example.com/cb"] }
    - { clientId: svc, secret: s3cret }
  identityProviders:
    - { issuer: https://idp.example.com, login: { clientId: portcullis, clientSecret: x } }
  registration: { dynamic: true }
`), { source: '<test>', env: {} })
  t.same(config.authorization.clients.map((c) => [c.clientId, c.auth, c.redirectUris]), [
    ['app', 'none', ['http://127.0.0.1:7777/callback', 'https://app.example.com/cb']],
    ['svc', 'client_secret_basic', []],
  ], 'redirectUris default to none; auth none is a public client')
  t.notOk(configWarnings(config).some((w) => w.includes('registration')), 'registration with a login IdP is not warned about')
})

t.test('what the checks refuse', async (t) => {
  t.same(problemsOf(base(`
  clients:
    - { clientId: a, auth: none, secret: x, redirectUris: ["http://127.0.0.1/cb"] }
    - { clientId: b, auth: none }
    - { clientId: c, secret: x, redirectUris: ["http://app.example.com/cb", "https://u:p@app.example.com/cb", "https://app.example.com/cb#f", "ftp://x/"] }
  identityProviders:
    - { issuer: https://one.example.com, login: { clientId: p } }
    - { issuer: https://two.example.com, login: { clientId: p } }
`)), [
    'authorization.clients[0].secret: is not used by a public client (auth: none)',
    'authorization.clients[1].redirectUris: is required for a public client (auth: none): it can only log in through a browser',
    'authorization.clients[2].redirectUris[0]: must be https (http is accepted only on loopback hosts)',
    'authorization.clients[2].redirectUris[1]: must not contain credentials',
    'authorization.clients[2].redirectUris[2]: must not have a fragment',
    'authorization.clients[2].redirectUris[3]: must be an absolute http(s) URL',
    'authorization.identityProviders[1].login: only one identity provider may have login; authorization.identityProviders[0].login has it',
  ])
})

t.test('registration without a login IdP is warned about', async (t) => {
  const config = parseConfig(base('  registration: { dynamic: true }'), { source: '<test>', env: {} })
  t.ok(configWarnings(config).includes('authorization.registration lets clients register, but no identity provider has login: they have nothing to log in to'))
})
