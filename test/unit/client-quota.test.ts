import t from 'tap'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { ClientRegistry } from '../../src/authorization-server/login/clients.ts'
import { OAuthError } from '../../src/authorization-server/errors.ts'
import type { AuthorizationConfig } from '../../src/config/types.ts'

// Finding 5: dynamic registrations have a quota (maxClients) and expire unused
// (unusedClientTtlSeconds), renewed at each use. Time is moved by hand.
const TTL_S = 3200
let now = Date.UTC(2026, 0, 1)
const realNow = Date.now
Date.now = () => now
t.teardown(() => { Date.now = realNow })

const registration = (maxClients: number): AuthorizationConfig['registration'] => ({
  dynamic: true, clientIdMetadataDocuments: false, allowedRedirectHosts: ['localhost'], maxClients, unusedClientTtlSeconds: TTL_S,
})
const client = { auth: 'none' as const, secret: undefined, jwksUri: undefined, jwks: undefined, redirectUris: ['http://localhost:9/cb'] }

async function refusal (p: Promise<unknown>): Promise<OAuthError> {
  try {
    await p
  } catch (err) {
    if (err instanceof OAuthError) return err
    throw err
  }
  throw new Error('not refused')
}

t.test('the quota refuses the next registration with 503 temporarily_unavailable, and nothing is evicted', async (t) => {
  const registry = new ClientRegistry(new Map(), registration(3), new MemoryStore())
  const ids = []
  for (let i = 0; i < 3; i++) ids.push((await registry.register(client)).clientId)
  for (let i = 0; i < 5; i++) {
    const err = await refusal(registry.register(client))
    t.equal(err.statusCode, 503)
    t.equal(err.error, 'temporarily_unavailable')
    t.equal(err.reason, 'client_quota')
  }
  for (const id of ids) t.ok(await registry.find(id), 'every registered client is still there')
})

t.test('unused clients expire; a used one lives on; expired ones free their places', async (t) => {
  const registry = new ClientRegistry(new Map(), registration(3), new MemoryStore())
  const [a, b, c] = [await registry.register(client), await registry.register(client), await registry.register(client)]
  now += TTL_S * 1000 / 2
  t.ok(await registry.find(a.clientId), 'a is used halfway')
  now += TTL_S * 1000 / 2 + 1000
  t.notOk(await registry.find(b.clientId), 'b expired unused')
  t.notOk(await registry.confidential(c.clientId), 'c expired unused')
  // b and c's bucket ends at most TTL/32 later: until then they still count (the count errs high)
  now += TTL_S * 1000 / 32 + 1000
  t.ok(await registry.confidential(a.clientId), 'a is alive: its use renewed it')
  await registry.register(client)
  await registry.register(client)
  t.equal((await refusal(registry.register(client))).reason, 'client_quota', 'a and the two new ones fill the quota')
  now += TTL_S * 1000 + TTL_S * 1000 / 16
  t.notOk(await registry.find(a.clientId), 'a expires too once unused for the TTL')
  await registry.register(client)
})

t.test('concurrent registrations never overshoot the quota', async (t) => {
  const store = new MemoryStore()
  const replicas = [0, 1, 2].map(() => new ClientRegistry(new Map(), registration(10), store))
  const results = await Promise.allSettled(Array.from({ length: 60 }, async (_, i) => await replicas[i % 3]!.register(client)))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 10)
  t.ok(results.every((r) => r.status === 'fulfilled' || (r.reason instanceof OAuthError && r.reason.reason === 'client_quota')))
})

t.test('a failed registration gives its place back', async (t) => {
  const store = new MemoryStore()
  const registry = new ClientRegistry(new Map(), registration(1), store)
  const setIfAbsent = store.setIfAbsent.bind(store)
  store.setIfAbsent = async (key, value, ttl) => key.startsWith('client:') ? false : await setIfAbsent(key, value, ttl)
  await t.rejects(registry.register(client), { name: 'StoreUnavailable' })
  store.setIfAbsent = setIfAbsent
  t.ok(await registry.register(client), 'the place is free again')
})
