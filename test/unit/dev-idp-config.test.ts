import t from 'tap'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose'
import {
  buildDevIdp, ConfigError, DEFAULT_DEV_IDP_YAML, derivedSub, loadDevIdpConfig, parseDevIdpConfig,
} from '../../src/dev-idp/index.ts'

const MINIMAL = `
users: [{ username: carol, password: carol-pw-123, email: carol@example.com, groups: [ops] }]
clients: [{ clientId: c1, secret: c1-secret-xyz }]
policy: [{ audience: "https://gw.example.com", resources: ["https://gw.example.com/mcp/a"], groups: [ops], scopes: [a.read] }]
`

/** The problems of a config that must not load, as `path: message` lines. */
function problems (yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseDevIdpConfig(yaml, { source: '<test>', env })
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`)
    throw error
  }
  throw new Error('the config loaded')
}

t.test('the built-in configuration and its example file', async (t) => {
  const config = parseDevIdpConfig(DEFAULT_DEV_IDP_YAML, { source: '<built-in>' })
  t.equal(config.issuer, 'http://127.0.0.1:8081')
  t.same(config.listen, { host: '127.0.0.1', port: 8081 })
  t.same(config.signing, { alg: 'ES256' })
  t.equal(config.idTokenTtlSeconds, 600)
  t.equal(config.idJagTtlSeconds, 300)
  t.same(config.users.map((u) => [u.username, u.groups]), [['alice', ['eng']], ['bob', ['sales']]])
  t.equal(config.users[0]?.sub, derivedSub('alice'), 'sub is derived from the username')
  t.not(config.users[0]?.sub, config.users[1]?.sub)
  t.match(config.users[0]?.sub, /^u_[A-Za-z0-9_-]{22}$/)
  t.same(config.clients.map((c) => [c.clientId, c.idJagClientId]), [['demo-client', 'demo-client']])
  t.same(config.policy.map((g) => [g.groups, g.scopes]), [[['eng'], ['tools.read', 'tools.write']], [['sales'], ['tools.read']]])
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.users[0]), 'frozen')
  t.equal(await readFile(new URL('../../examples/dev-idp.yaml', import.meta.url), 'utf8'), DEFAULT_DEV_IDP_YAML, 'examples/dev-idp.yaml is the built-in config')
})

t.test('defaults of a minimal file', async (t) => {
  const config = parseDevIdpConfig(MINIMAL, { source: '<test>' })
  t.equal(config.issuer, undefined, 'no issuer: the bound address decides')
  t.same(config.listen, { host: '127.0.0.1', port: 8081 })
  t.same(config.signing, { alg: 'ES256' })
  t.same(config.clients[0]?.redirectUris, [])
  t.equal(parseDevIdpConfig('', { source: '<empty>' }).users.length, 0, 'an empty file is valid')
  const withSub = parseDevIdpConfig(MINIMAL.replace('username: carol,', 'username: carol, sub: "00u-carol",'), { source: '<test>' })
  t.equal(withSub.users[0]?.sub, '00u-carol')
  const mapped = parseDevIdpConfig(MINIMAL.replace('secret: c1-secret-xyz', 'secret: c1-secret-xyz, idJagClientId: c1-at-gw'), { source: '<test>' })
  t.equal(mapped.clients[0]?.idJagClientId, 'c1-at-gw')
})

t.test('schema problems: every one, with its path', async (t) => {
  const found = problems(`
issuers: https://x
listen: { host: 127.0.0.1, port: 70000 }
signing: { alg: HS256 }
idTokenTtlSeconds: 0
idJagTtlSeconds: 7200
users:
  - { username: a, email: a@example.com }
  - { username: b, password: pw, email: not-an-email, groups: eng }
clients:
  - { clientId: c, client_secret: s }
policy:
  - { audience: "https://gw", scopes: ["a b"], group: [eng] }
`)
  t.same(found.sort(), [
    'clients[0].client_secret: unknown key (did you mean secret?)',
    'clients[0].secret: is required',
    'idJagTtlSeconds: must be ≤ 3600',
    'idTokenTtlSeconds: must be ≥ 1',
    'issuers: unknown key (expected one of: issuer, listen, signing, idTokenTtlSeconds, idJagTtlSeconds, users, clients, policy)',
    'listen.port: must be ≤ 65535',
    'policy[0].group: unknown key (did you mean groups?)',
    'policy[0].resources: is required',
    'policy[0].scopes[0]: must be a scope token (printable ASCII, no spaces or quotes)',
    'signing.alg: must be one of: ES256, RS256',
    'users[0].password: is required',
    'users[1].email: must be an email address',
    'users[1].groups: must be a list',
  ].sort())
})

t.test('cross-field problems', async (t) => {
  const found = problems(`
issuer: https://idp.example.com/tenant
users:
  - { username: a, password: pw, email: a@example.com, groups: [eng] }
  - { username: a, password: pw, email: a2@example.com }
  - { username: z, sub: "${derivedSub('a')}", password: pw, email: z@example.com }
clients:
  - { clientId: c, secret: s, redirectUris: ["not a url", "https://app.example.com/cb#x"] }
  - { clientId: c, secret: s2 }
policy:
  - audience: gw.example.com
    resources: ["ftp://gw.example.com/x", "https://gw.example.com/mcp/a"]
    groups: [eng, sre]
    users: [a, nobody]
    clients: [c, other]
    scopes: []
`)
  t.same(found.sort(), [
    'clients[0].redirectUris[0]: must be an absolute URL',
    'clients[0].redirectUris[1]: must not have a fragment',
    'clients[1].clientId: repeats the clientId of clients[0]',
    'issuer: must be an origin without path or query (the dev IdP serves its endpoints at the root)',
    'policy[0].audience: must be an absolute URL',
    'policy[0].clients[1]: is not the clientId of any client',
    'policy[0].groups[1]: no user is in this group',
    'policy[0].resources[0]: must be an http or https URL',
    'policy[0].users[1]: is not the username of any user',
    'users[1].username: repeats the username of users[0]',
    'users[2].sub: repeats the sub of users[0]',
  ].sort())
  t.same(problems('listen: { host: 0.0.0.0 }'), ['issuer: is required when listen.host is a wildcard address (clients must be told one URL)'])
  t.same(parseDevIdpConfig('listen: { host: 0.0.0.0 }\nissuer: http://idp.local:8081', { source: '<t>' }).issuer, 'http://idp.local:8081')
})

t.test('${ENV}: substituted; a missing variable is named, no message repeats a value', async (t) => {
  const yaml = MINIMAL.replace('secret: c1-secret-xyz', 'secret: "${C1_SECRET}"')
  t.equal(parseDevIdpConfig(yaml, { source: '<t>', env: { C1_SECRET: 'from-env' } }).clients[0]?.secret, 'from-env')
  t.same(problems(yaml), ['clients[0].secret: environment variable C1_SECRET is not set'])
  const bad = problems(`${MINIMAL}\nidTokenTtlSeconds: carol-pw-123\n`)
  t.same(bad, ['idTokenTtlSeconds: must be an integer'])
  t.notMatch(bad.join('\n'), /carol-pw-123|c1-secret-xyz/)
  t.throws(() => parseDevIdpConfig('users: [a\n', { source: 'idp.yaml' }), ConfigError, 'YAML syntax errors are ConfigErrors')
  t.same(problems('issuer: a\nissuer: b\n'), ['issuer: duplicate key (line 2, col 1)'])
})

t.test('loadDevIdpConfig and signing.keysFile (relative to the file)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dev-idp-'))
  const missing = await loadDevIdpConfig(join(dir, 'missing.yaml')).then(() => undefined, (e: unknown) => e)
  t.same(missing instanceof ConfigError ? missing.problems.map((p) => p.message) : missing, ['cannot read the file (ENOENT)'])
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES256' }
  const rsa = { ...(await exportJWK((await generateKeyPair('RS256', { extractable: true })).privateKey)), kid: 'r1' }
  await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: [rsa, jwk] }))
  await writeFile(join(dir, 'idp.yaml'), `${MINIMAL}signing: { keysFile: keys.json }\nlisten: { port: 0 }\n`)
  const config = await loadDevIdpConfig(join(dir, 'idp.yaml'))
  t.equal(config.signing.keysFile, join(dir, 'keys.json'))
  const idp = await buildDevIdp(config, { logger: false })
  t.same(idp.jwks.keys.map((k) => [k.kid, k.alg, k.use, 'd' in k]), [['k1', 'ES256', 'sig', false]], 'the ES256 key, public part only')
  const rsaIdp = await buildDevIdp({ ...config, signing: { ...config.signing, alg: 'RS256' } }, { logger: false })
  t.same(rsaIdp.jwks.keys.map((k) => [k.kid, k.kty, 'd' in k]), [['r1', 'RSA', false]])

  // the format of `portcullis keys generate`: the key with status current signs, every key is published
  const next = { ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)), kid: 'k2', alg: 'ES256', use: 'sig', status: 'next' }
  await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: [next, { ...jwk, status: 'current' }] }))
  const rotated = await buildDevIdp(config, { logger: false })
  t.same(rotated.jwks.keys.map((k) => [k.kid, Object.keys(k).sort()]), [['k1', ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']], ['k2', ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']]])
  t.equal(decodeProtectedHeader(await rotated.signIdToken({ sub: 'x' })).kid, 'k1', 'signed with the current key')

  const publicOnly = { ...jwk, d: undefined }
  for (const [content, expected] of [
    ['not json', 'signing.keysFile: is not JSON'],
    ['{"kid":"x"}', 'signing.keysFile: must be a JWKS: {"keys": [...]}'],
    [JSON.stringify({ keys: [rsa] }), 'signing.keysFile: has no ES256 key (signing.alg)'],
    [JSON.stringify({ keys: [publicOnly] }), 'signing.keysFile.keys[0]: must be a private key (has no d)'],
    [JSON.stringify({ keys: [{ ...jwk, d: 'AAAA' }] }), 'signing.keysFile.keys[0]: is not a usable ES256 private key'],
    [JSON.stringify({ keys: [{ ...jwk, status: 'next' }] }), 'signing.keysFile: must have exactly one ES256 key with status current (found 0)'],
    [JSON.stringify({ keys: [jwk, jwk] }), 'signing.keysFile: repeats a kid'],
  ] as const) {
    await writeFile(join(dir, 'keys.json'), content)
    const error = await buildDevIdp(config, { logger: false }).then(() => undefined, (e: unknown) => e)
    t.ok(error instanceof ConfigError, expected)
    t.same(error instanceof ConfigError ? error.problems.map((p) => `${p.path}: ${p.message}`) : [], [expected])
  }
})
