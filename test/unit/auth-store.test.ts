// The federated login's state in the shared store (design.md §7): replicas are AuthorizationContexts
// built on one store, each with its own routes (Fastify inject), so "another replica" and "after a
// restart" are a second context on the same store. The happy path runs against process memory and,
// when redis-server is installed, a real Redis; the failure path against a store whose every call
// rejects — it checks the callers' fail-closed answers (503 temporarily_unavailable), not the store.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, exportJWK, SignJWT } from 'jose'
import { AuthorizationContext, authorizationServer } from '../../src/authorization-server/authorization-server.ts'
import { generatePrivateJwk } from '../../src/authorization-server/keys.ts'
import type { CimdFetchOptions } from '../../src/authorization-server/login/client-metadata-document.ts'
import type { CodeGrant } from '../../src/authorization-server/login/codes.ts'
import { parseConfig } from '../../src/config/load.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { RedisStore } from '../../src/store/redis-store.ts'
import { StoreUnavailable, type Store } from '../../src/store/store.ts'
import { Metrics } from '../../src/telemetry/metrics.ts'
import { startFakeOidc } from '../helpers/fake-oidc.ts'
import { captureLogs } from '../helpers/log-capture.ts'
import { pkcePair } from '../helpers/federated.ts'
import { REDIS_SERVER_BIN, startRedis } from '../helpers/redis-server.ts'

const PUBLIC_ID = 'public-app'
const WEB = { id: 'web-app', secret: 'web-app-secret-0123456789' }
const JWT_CLIENT = 'jwt-app'
const REDIRECT = 'http://127.0.0.1:9/cb'
const GW = 'https://gw.example'
const RESOURCE = `${GW}/mcp/tools`

const dir = mkdtempSync(join(tmpdir(), 'auth-store-'))
const keysFile = join(dir, 'keys.json')
writeFileSync(keysFile, JSON.stringify({ keys: [await generatePrivateJwk('ES256', 'current')] }))
const clientKey = await generateKeyPair('ES256')
const clientJwk = { ...await exportJWK(clientKey.publicKey), kid: 'c1', alg: 'ES256' }
const idp = await startFakeOidc('portcullis')
t.teardown(() => idp.close())
const cimd = await startCimdServer()

const config = parseConfig(`
publicUrl: ${GW}
authorization:
  accessTokenTtlSeconds: 300
  signingKeys: ${keysFile}
  clients:
    - { clientId: ${PUBLIC_ID}, auth: none, redirectUris: ["${REDIRECT}"] }
    - { clientId: ${WEB.id}, auth: client_secret_basic, secret: ${WEB.secret}, redirectUris: ["${REDIRECT}"] }
    - { clientId: ${JWT_CLIENT}, auth: private_key_jwt, jwks: { keys: [${JSON.stringify(clientJwk)}] }, redirectUris: ["${REDIRECT}"] }
  identityProviders:
    - issuer: ${idp.issuer}
      algorithms: [ES256]
      login: { clientId: portcullis, clientSecret: portcullis-secret }
  registration: { dynamic: true, clientIdMetadataDocuments: true }
servers:
  tools:
    upstream: { url: "http://127.0.0.1:9/mcp" }
    scopes: [tools.read]
    tools: [{ allow: ["*"] }]
`, { source: '<auth-store test>', env: {} })

interface Replica {
  readonly auth: AuthorizationContext
  readonly app: FastifyInstance
  readonly logs: Array<Record<string, unknown>>
}

/** One gateway replica's authorization server on `store`. */
async function replica (t: Test, store: Store): Promise<Replica> {
  const metrics = new Metrics()
  const auth = new AuthorizationContext(config, metrics, {}, { store, ...(cimd === undefined ? {} : { cimd: cimd.opts }) })
  const captured = captureLogs()
  const app = Fastify({ logger: { level: 'info', stream: captured.stream } })
  await auth.loadKeys(app.log)
  await app.register(authorizationServer, { auth, metrics })
  await app.ready()
  t.teardown(() => app.close())
  return { auth, app, logs: captured.logs }
}

/** `store` with some methods replaced (the rest are its own, bound). */
function delegate (store: Store, overrides: Partial<Store>): Store {
  return {
    kind: store.kind,
    get up () { return store.up },
    setIfAbsent: store.setIfAbsent.bind(store),
    set: store.set.bind(store),
    get: store.get.bind(store),
    take: store.take.bind(store),
    delete: store.delete.bind(store),
    expire: store.expire.bind(store),
    compareAndSet: store.compareAndSet.bind(store),
    broadcast: store.broadcast.bind(store),
    subscribe: store.subscribe.bind(store),
    synced: store.synced.bind(store),
    onStateChange: store.onStateChange.bind(store),
    close: store.close.bind(store),
    ...overrides,
  }
}

/** Every value and key written, to show what a dump of the store would hold. */
function recording (store: Store): { store: Store, writes: string[] } {
  const writes: string[] = []
  const recorded = delegate(store, {
    setIfAbsent: async (key: string, value: string, ttl: number | undefined) => { writes.push(key, value); return await store.setIfAbsent(key, value, ttl) },
    set: async (key: string, value: string, ttl: number | undefined) => { writes.push(key, value); await store.set(key, value, ttl) },
    compareAndSet: async (key: string, expected: string, next: string, ttl: number | undefined) => { writes.push(key, next); return await store.compareAndSet(key, expected, next, ttl) },
    broadcast: async (name: string, member: string, until: number) => { writes.push(name, member); await store.broadcast(name, member, until) },
  })
  return { store: recorded, writes }
}

const form = (params: Record<string, string>): string => new URLSearchParams(params).toString()

async function token (r: Replica, params: Record<string, string>, authorization?: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await r.app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization === undefined ? {} : { authorization }) },
    payload: form(params),
  })
  return { status: res.statusCode, body: res.json() }
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

function authorizeUrl (clientId: string, challenge: string): string {
  return `/oauth/authorize?${form({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'client-state', resource: RESOURCE })}`
}

/** /oauth/authorize at `start`, the IdP, then /oauth/callback at `finish`: the client's redirect. */
async function login (start: Replica, finish: Replica, clientId = PUBLIC_ID): Promise<{ location: URL, verifier: string, state: string, cookie: string }> {
  const { verifier, challenge } = pkcePair()
  const authorize = await start.app.inject({ method: 'GET', url: authorizeUrl(clientId, challenge) })
  if (authorize.statusCode !== 302) throw new Error(`authorize answered ${authorize.statusCode}: ${authorize.body}`)
  const cookie = String(authorize.headers['set-cookie']).split(';')[0] ?? ''
  const atIdp = await fetch(String(authorize.headers.location), { redirect: 'manual' })
  const callback = new URL(atIdp.headers.get('location') ?? '')
  const answered = await finish.app.inject({ method: 'GET', url: `${callback.pathname}${callback.search}`, headers: { cookie } })
  if (answered.statusCode !== 302) throw new Error(`callback answered ${answered.statusCode}: ${answered.body}`)
  return { location: new URL(String(answered.headers.location)), verifier, state: callback.searchParams.get('state') ?? '', cookie }
}

async function codeFor (start: Replica, finish: Replica): Promise<{ code: string, verifier: string }> {
  const { location, verifier } = await login(start, finish)
  const code = location.searchParams.get('code')
  if (code === null) throw new Error(`no code: ${location.search}`)
  return { code, verifier }
}

const redeemForm = (code: string, verifier: string): Record<string, string> =>
  ({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: PUBLIC_ID })

async function clientAssertion (jti = crypto.randomUUID()): Promise<string> {
  return await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'c1' }).setIssuer(JWT_CLIENT).setSubject(JWT_CLIENT)
    .setAudience(`${GW}/oauth/token`).setJti(jti).setIssuedAt().setExpirationTime('2m').sign(clientKey.privateKey)
}

async function rejection (promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (err: unknown) => err)
}

async function eventually (what: string, check: () => boolean, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return true
}

const grant: CodeGrant = { clientId: PUBLIC_ID, redirectUri: REDIRECT, codeChallenge: 'x'.repeat(43), resource: RESOURCE, scopes: [], subject: 'u', idpIssuer: idp.issuer, claims: {} }

// ---------------------------------------------------------------- the happy path, per store

const stores: Array<{ name: string, open: (t: Test) => Promise<Store> }> = [{ name: 'memory', open: async () => new MemoryStore() }]
if (existsSync(REDIS_SERVER_BIN)) {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let n = 0
  stores.push({
    name: 'redis',
    open: async (t) => {
      const store = new RedisStore({ url: redis.url, keyPrefix: `auth-store-${n++}:` })
      t.teardown(() => store.close())
      store.start()
      await eventually('redis up', () => store.up, 5000)
      return store
    },
  })
} else {
  t.comment(`redis-server not found at ${REDIS_SERVER_BIN}: the happy path runs against process memory only`)
}

for (const { name, open } of stores) {
  t.test(`${name}: a code is redeemed once, whichever replica 20 concurrent requests reach`, async (t) => {
    const store = await open(t)
    const [a, b] = [await replica(t, store), await replica(t, store)]
    const code = await a.auth.login.codes.issue(grant)
    const wins = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? a : b).auth.login.codes.redeem(code)))
    t.equal(wins.filter(Boolean).length, 1, 'exactly one redeem wins')

    const { code: real, verifier } = await codeFor(a, b)
    const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => await token(i % 2 === 0 ? a : b, redeemForm(real, verifier))))
    const issued = answers.filter((r) => r.status === 200)
    t.equal(issued.length, 1, 'exactly one token request gets a token')
    t.ok(answers.filter((r) => r.status !== 200).every((r) => r.status === 400 && r.body.error === 'invalid_grant'), 'the others: invalid_grant')
    // Replays happened, so the token that won is revoked too (RFC 6749 §4.1.2), at both replicas.
    const accessToken = String(issued[0]?.body.access_token)
    for (const r of [a, b]) {
      await eventually('revoked', () => r.auth.revocations.active)
      t.match(await rejection(r.auth.verifier.verify(accessToken, RESOURCE)), { reason: 'revoked' })
    }
  })

  t.test(`${name}: a code replayed at another replica is refused and its token revoked at every replica within 3 s`, async (t) => {
    const store = await open(t)
    const [a, b] = [await replica(t, store), await replica(t, store)]
    const { code, verifier } = await codeFor(a, b)
    const first = await token(a, redeemForm(code, verifier))
    t.equal(first.status, 200, 'redeemed at A')
    const accessToken = String(first.body.access_token)
    t.ok(await b.auth.verifier.verify(accessToken, RESOURCE), 'B accepts the token (shared signing keys)')
    t.notOk(b.auth.revocations.active, 'nothing revoked yet: the RS check does not look')
    const replay = await token(b, redeemForm(code, verifier))
    t.match(replay, { status: 400, body: { error: 'invalid_grant' } })
    t.equal(b.logs.filter((l) => l['event.name'] === 'oauth.token').at(-1)?.['portcullis.auth.reason'], 'replayed_code')
    for (const r of [a, b]) {
      await eventually('the revocation to arrive', () => r.auth.revocations.isRevoked(JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString()).jti))
      t.match(await rejection(r.auth.verifier.verify(accessToken, RESOURCE)), { reason: 'revoked' })
    }
    const later = await replica(t, store)
    await store.synced()
    t.ok(later.auth.revocations.active, 'a replica started afterwards hears the revocation at subscription')
    t.match(await rejection(later.auth.verifier.verify(accessToken, RESOURCE)), { reason: 'revoked' })
  })

  t.test(`${name}: a pending login is taken once, by one of 20 concurrent callbacks`, async (t) => {
    const store = await open(t)
    const [a, b] = [await replica(t, store), await replica(t, store)]
    const started = await a.auth.login.pending.begin({ clientId: PUBLIC_ID, redirectUri: REDIRECT, clientState: 's', codeChallenge: 'x'.repeat(43), resource: RESOURCE, scopes: [] })
    const taken = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? a : b).auth.login.pending.take(started.state)))
    const found = taken.filter((p) => p !== undefined)
    t.equal(found.length, 1, 'exactly one callback finds it')
    t.same(found[0], started.pending)
  })

  t.test(`${name}: a registration survives on the store: another replica and a restart know it; its secret is stored only as a digest`, async (t) => {
    const { store, writes } = recording(await open(t))
    const a = await replica(t, store)
    const res = await a.app.inject({ method: 'POST', url: '/oauth/register', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ redirect_uris: [REDIRECT] }) })
    t.equal(res.statusCode, 201)
    const { client_id: id, client_secret: secret } = res.json<{ client_id: string, client_secret: string }>()
    t.match(id, /^dyn-/)
    await a.app.close()
    const restarted = await replica(t, store)
    t.match(await restarted.auth.login.clients.find(id), { clientId: id, auth: 'client_secret_basic', secret: undefined, redirectUris: [REDIRECT] })
    const authenticated = await token(restarted, { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43) }, basic(id, secret))
    t.match(authenticated, { status: 400, body: { error: 'invalid_grant' } }, 'the secret authenticates at the restarted replica (then the code is unknown)')
    const wrong = await token(restarted, { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43) }, basic(id, `${secret}x`))
    t.match(wrong, { status: 401, body: { error: 'invalid_client' } }, 'a wrong secret does not')
    t.ok(writes.length > 0)
    t.notOk(writes.some((w) => w.includes(secret)), 'the secret is in no key or value written to the store')
    const { code, verifier } = await codeFor(restarted, restarted)
    t.notOk(writes.some((w) => w.includes(code) || w.includes(verifier)), 'nor is an authorization code or PKCE verifier')
    t.ok(writes.filter((_, i) => i % 2 === 0).every((key) => key.length <= 64), 'keys are bounded')
  })

  t.test(`${name}: a private_key_jwt assertion is single use across replicas`, async (t) => {
    const store = await open(t)
    const [a, b] = [await replica(t, store), await replica(t, store)]
    const assertion = await clientAssertion()
    const params = { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43), client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }
    t.match(await token(a, params), { status: 400, body: { error: 'invalid_grant' } }, 'authenticated at A')
    t.match(await token(b, params), { status: 401, body: { error: 'invalid_client' } }, 'the same assertion at B: replayed')
  })

  t.test(`${name}: a client metadata document fetched by one replica serves the others`, { skip: cimd === undefined ? 'openssl is not available' : false }, async (t) => {
    if (cimd === undefined) return
    const store = await open(t)
    const [a, b] = [await replica(t, store), await replica(t, store)]
    const id = `https://cimd.test:${cimd.port}/client.json`
    const before = cimd.hits()
    t.equal((await a.auth.login.clients.find(id))?.clientId, id)
    t.same(await b.auth.login.clients.find(id), await a.auth.login.clients.find(id))
    t.equal(cimd.hits() - before, 1, 'one fetch for both replicas')
  })

  t.test(`${name}: a revocation is heard by every replica on the store`, async (t) => {
    const store = await open(t)
    const [a, b] = [await replica(t, store), await replica(t, store)]
    t.notOk(b.auth.revocations.active)
    await a.auth.revocations.revoke('jti-1', Math.floor(Date.now() / 1000) + 60)
    t.ok(await eventually('B hears it', () => b.auth.revocations.isRevoked('jti-1')))
    t.ok(b.auth.revocations.active)
    t.notOk(b.auth.revocations.isRevoked('jti-2'))
  })
}

// ---------------------------------------------------------------- the store cannot answer

/** A store that rejects every call, with StoreUnavailable or (`raw`) whatever a broken client might throw. */
function downStore (raw = false): Store {
  const fail = async (): Promise<never> => { throw raw ? new Error('ECONNRESET') : new StoreUnavailable('down for the test') }
  return {
    kind: 'redis',
    up: false,
    setIfAbsent: fail,
    set: fail,
    get: fail,
    take: fail,
    delete: fail,
    expire: fail,
    compareAndSet: fail,
    broadcast: fail,
    subscribe: () => {},
    synced: async () => {},
    onStateChange: () => {},
    close: async () => {},
  }
}

/** Process memory, except that writes of authorization codes fail: the login gets as far as issuing one. */
function codesDown (): Store {
  const memory = new MemoryStore()
  return delegate(memory, {
    setIfAbsent: async (key: string, value: string, ttl: number | undefined) => {
      if (key.startsWith('code:')) throw new StoreUnavailable('down for the test')
      return await memory.setIfAbsent(key, value, ttl)
    },
  })
}

const lastReason = (r: Replica, event: string): unknown => r.logs.filter((l) => l['event.name'] === event && l.outcome === 'rejected').at(-1)?.['portcullis.auth.reason']
const UNAVAILABLE = { error: 'temporarily_unavailable' }

for (const raw of [false, true]) {
  t.test(`store down (${raw ? 'any rejection' : 'StoreUnavailable'}): every endpoint fails closed with 503 temporarily_unavailable`, async (t) => {
    const r = await replica(t, downStore(raw))
    const { challenge } = pkcePair()
    const code = 'c'.repeat(43)
    const cases: Array<{ name: string, params: Record<string, string>, authorization?: string }> = [
      { name: 'public client: the code lookup', params: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43), client_id: PUBLIC_ID } },
      { name: 'configured confidential client: the code lookup', params: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43) }, authorization: basic(WEB.id, WEB.secret) },
      { name: 'dynamic client: the client lookup', params: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43) }, authorization: basic('dyn-AAAAAAAAAAAAAAAAAAAAAA', 'secret') },
      { name: 'dynamic public client: the client lookup', params: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43), client_id: 'dyn-AAAAAAAAAAAAAAAAAAAAAA' } },
      {
        name: 'private_key_jwt: the assertion replay check',
        params: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43), client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion() },
      },
    ]
    for (const c of cases) {
      const res = await token(r, c.params, c.authorization)
      t.match(res, { status: 503, body: UNAVAILABLE }, `token endpoint, ${c.name}`)
      t.equal(res.body.access_token, undefined)
      t.equal(lastReason(r, 'oauth.token'), 'store_unavailable', `${c.name}: reason`)
    }

    const register = await r.app.inject({ method: 'POST', url: '/oauth/register', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ redirect_uris: [REDIRECT] }) })
    t.equal(register.statusCode, 503, 'registration')
    t.match(register.json(), UNAVAILABLE)
    t.equal(lastReason(r, 'oauth.register'), 'store_unavailable')

    for (const clientId of ['dyn-AAAAAAAAAAAAAAAAAAAAAA', `https://cimd.test:${cimd?.port ?? 1}/client.json`]) {
      const page = await r.app.inject({ method: 'GET', url: authorizeUrl(clientId, challenge), headers: { accept: 'text/html' } })
      t.equal(page.statusCode, 503, `authorize, client ${clientId} unknown yet: an error page`)
      t.equal(page.headers.location, undefined, 'never a redirect to an unvalidated URI')
      t.match(page.body, /temporarily_unavailable/)
      t.equal(lastReason(r, 'oauth.authorize'), 'store_unavailable')
    }
    const redirected = await r.app.inject({ method: 'GET', url: authorizeUrl(PUBLIC_ID, challenge) })
    t.equal(redirected.statusCode, 302, 'authorize, configured client: its redirect URI is validated, so the error goes there')
    const location = new URL(String(redirected.headers.location))
    t.equal(`${location.origin}${location.pathname}`, REDIRECT)
    t.equal(location.searchParams.get('error'), 'temporarily_unavailable')
    t.equal(location.searchParams.get('state'), 'client-state')
    t.equal(lastReason(r, 'oauth.authorize'), 'store_unavailable')

    const callback = await r.app.inject({ method: 'GET', url: `/oauth/callback?state=${'s'.repeat(43)}&code=x&iss=${encodeURIComponent(idp.issuer)}` })
    t.equal(callback.statusCode, 503, 'callback: the pending login cannot be read, so there is no redirect URI: a page')
    t.equal(callback.headers.location, undefined)
    t.match(callback.json(), UNAVAILABLE)
    t.equal(lastReason(r, 'oauth.authorize'), 'store_unavailable')

    await t.rejects(r.auth.login.codes.find(code), StoreUnavailable, 'the classes reject with StoreUnavailable')
    await t.rejects(r.auth.login.clients.register({ auth: 'none', secret: undefined, jwksUri: undefined, jwks: undefined, redirectUris: [REDIRECT] }), StoreUnavailable)
    await t.rejects(r.auth.replay.claim('iss', 'jti', Date.now() / 1000 + 60), StoreUnavailable)
  })
}

t.test('store down between the IdP and the code: the callback sends the client temporarily_unavailable', async (t) => {
  const r = await replica(t, codesDown())
  const { location } = await login(r, r)
  t.equal(`${location.origin}${location.pathname}`, REDIRECT)
  t.equal(location.searchParams.get('error'), 'temporarily_unavailable')
  t.equal(location.searchParams.get('code'), null)
  t.equal(location.searchParams.get('state'), 'client-state')
  t.equal(lastReason(r, 'oauth.authorize'), 'store_unavailable')
})

/** An https server for client ID metadata documents (a certificate for cimd.test made with openssl), or undefined without openssl. */
async function startCimdServer (): Promise<{ port: number, opts: CimdFetchOptions, hits: () => number } | undefined> {
  let cert: string, key: string
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=cimd.test',
      '-addext', 'subjectAltName=DNS:cimd.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
    key = readFileSync(join(dir, 'key.pem'), 'utf8')
  } catch {
    return undefined
  }
  let hits = 0
  const server = createServer({ key, cert }, (req, res) => {
    hits++
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ client_id: `https://cimd.test:${port}${req.url ?? ''}`, redirect_uris: [REDIRECT] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return {
    port,
    hits: () => hits,
    opts: {
      resolve: async (host) => host === 'cimd.test' ? [{ address: '127.0.0.1', family: 4 }] : [],
      isAllowedAddress: (address) => address === '127.0.0.1',
      timeoutMs: 2000,
      maxBytes: 16 * 1024,
      tls: { ca: cert },
    },
  }
}
