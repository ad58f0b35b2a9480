import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { RedisStore } from '../../src/store/redis-store.ts'
import { isStoreUnavailable, StoreUnavailable, type Store } from '../../src/store/store.ts'
import { startRedis } from '../helpers/redis-server.ts'

// One contract, two stores: every case runs against process memory and against a real
// redis-server, with the same assertions. Then what only Redis can do: fail fast when it is
// killed or hung, come back after a restart, and keep its password out of every error.

interface Subject {
  name: string
  /** a store of its own, closed at teardown; Redis: the prefix isolates it on the shared server */
  open (t: Test, prefix?: string): Promise<Store>
  /** two views of one shared state (Redis: two replicas; memory: one instance) */
  pair (t: Test): Promise<[Store, Store]>
}

const server = await startRedis()
t.teardown(() => server.stop())

/** the lines a pino logger wrote, parsed */
type Logged = Array<{ level: number, msg: string, [k: string]: unknown }>
function logger (lines: Logged = []): pino.Logger {
  return pino({ level: 'info' }, { write (line: string) { lines.push(JSON.parse(line) as Logged[number]) } })
}
const warnings = (log: Logged): Logged => log.filter((l) => l.level === 40)
const infos = (log: Logged): Logged => log.filter((l) => l.level === 30)

async function until (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const start = Date.now()
  while (!await fn()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
  return Date.now() - start
}

async function openRedis (t: Test, url: string, prefix: string, opts: { commandTimeoutMs?: number, log?: Logged } = {}): Promise<RedisStore> {
  const store = new RedisStore({ url, keyPrefix: prefix, log: logger(opts.log), ...(opts.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: opts.commandTimeoutMs }) })
  t.teardown(() => store.close())
  store.start()
  await until('the store to be up', () => store.up)
  return store
}

const subjects: Subject[] = [
  {
    name: 'memory',
    async open () { return new MemoryStore() },
    async pair () {
      const store = new MemoryStore()
      return [store, store]
    },
  },
  {
    name: 'redis',
    open: (t, prefix) => openRedis(t, server.url, prefix ?? `t-${randomUUID()}:`),
    async pair (t) {
      const prefix = `t-${randomUUID()}:`
      return [await openRedis(t, server.url, prefix), await openRedis(t, server.url, prefix)]
    },
  },
]

const contract: Array<[string, (t: Test, subject: Subject) => Promise<void>]> = [
  ['setIfAbsent: true when absent, false while the key exists', async (t, s) => {
    const store = await s.open(t)
    t.equal(await store.setIfAbsent('k', 'v1', 60_000), true)
    t.equal(await store.setIfAbsent('k', 'v2', 60_000), false)
    t.equal(await store.get('k'), 'v1', 'the first value stays')
    t.equal(await store.setIfAbsent('forever', 'v', undefined), true, 'without a TTL')
    t.equal(await store.setIfAbsent('forever', 'w', undefined), false)
    t.equal(await store.expire('forever', 60_000), true, 'it exists (and had no expiry to keep)')
  }],
  ['a key expires after its TTL, and then can be set again', async (t, s) => {
    const store = await s.open(t)
    const start = Date.now()
    t.equal(await store.setIfAbsent('k', 'v', 200), true)
    t.equal(await store.get('k'), 'v', 'there before the TTL')
    await until('expiry', async () => await store.get('k') === undefined, 3000)
    t.ok(Date.now() - start >= 190, `gone after ${Date.now() - start} ms, not before the TTL`)
    t.equal(await store.setIfAbsent('k', 'w', 60_000), true, 'absent again')
    await store.set('s', 'v', 150)
    await until('expiry of set with a TTL', async () => await store.get('s') === undefined, 3000)
    t.pass('set with a TTL expires too')
  }],
  ['set without a TTL persists; set replaces', async (t, s) => {
    const store = await s.open(t)
    await store.set('k', 'v1', undefined)
    await store.set('k', 'v2', undefined)
    await sleep(300)
    t.equal(await store.get('k'), 'v2')
    t.equal(await store.get('missing'), undefined)
  }],
  ['take returns the value once', async (t, s) => {
    const store = await s.open(t)
    await store.set('k', 'v', 60_000)
    t.equal(await store.take('k'), 'v')
    t.equal(await store.take('k'), undefined)
    t.equal(await store.get('k'), undefined)
    t.equal(await store.take('missing'), undefined)
  }],
  ['20 concurrent takes: exactly one gets the value', async (t, s) => {
    const [a, b] = await s.pair(t)
    await a.set('code', 'v', 60_000)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take('code')))
    t.same(results.filter((r) => r !== undefined), ['v'])
  }],
  ['delete removes a key; expire gives an existing key a new lifetime and is false for a missing one', async (t, s) => {
    const store = await s.open(t)
    await store.set('k', 'v', undefined)
    await store.delete('k')
    t.equal(await store.get('k'), undefined)
    await store.delete('k')
    t.pass('deleting a missing key is fine')
    t.equal(await store.expire('missing', 1000), false)
    await store.set('e', 'v', undefined)
    t.equal(await store.expire('e', 150), true)
    await until('the new lifetime to end', async () => await store.get('e') === undefined, 3000)
    t.equal(await store.expire('e', 1000), false, 'expired keys are missing')
  }],
  ['compareAndSet replaces only the expected value, with or without a TTL', async (t, s) => {
    const store = await s.open(t)
    t.equal(await store.compareAndSet('k', 'a', 'b', undefined), false, 'missing key')
    await store.set('k', 'a', undefined)
    t.equal(await store.compareAndSet('k', 'x', 'b', undefined), false, 'other value')
    t.equal(await store.get('k'), 'a')
    t.equal(await store.compareAndSet('k', 'a', 'b', undefined), true)
    t.equal(await store.get('k'), 'b')
    await sleep(250)
    t.equal(await store.get('k'), 'b', 'no TTL: stays')
    t.equal(await store.compareAndSet('k', 'b', 'c', 150), true)
    t.equal(await store.get('k'), 'c')
    await until('the CAS TTL to end', async () => await store.get('k') === undefined, 3000)
    await store.set('t', 'a', 150)
    t.equal(await store.compareAndSet('t', 'a', 'b', undefined), true)
    await sleep(300)
    t.equal(await store.get('t'), 'b', 'CAS without a TTL drops the old one')
  }],
  ['20 concurrent compareAndSets from the same value: exactly one wins', async (t, s) => {
    const [a, b] = await s.pair(t)
    await a.set('k', 'v0', 60_000)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).compareAndSet('k', 'v0', `v${i + 1}`, 60_000)))
    t.equal(results.filter(Boolean).length, 1)
    t.equal(await a.get('k'), `v${results.indexOf(true) + 1}`, 'the winner wrote')
  }],
  ['stores with different prefixes do not see each other\'s keys', async (t, s) => {
    const one = await s.open(t, `iso-${randomUUID()}-a:`)
    const two = await s.open(t, `iso-${randomUUID()}-b:`)
    await one.set('k', 'one', undefined)
    t.equal(await two.get('k'), undefined)
    t.equal(await two.setIfAbsent('k', 'two', 60_000), true)
    t.equal(await one.get('k'), 'one')
    t.equal(await two.take('k'), 'two')
    t.equal(await one.get('k'), 'one')
    await one.broadcast('set', 'm', Date.now() + 60_000)
    const heard: string[] = []
    two.subscribe('set', (m) => heard.push(m))
    await sleep(300)
    t.same(heard, [], 'nor each other\'s broadcast sets')
  }],
  ['a broadcast member is heard by a subscriber on another replica', async (t, s) => {
    const [a, b] = await s.pair(t)
    const heard: Array<[string, number]> = []
    b.subscribe('revoked', (m, at) => heard.push([m, at]))
    await sleep(300) // Redis: the subscriber connection comes up
    const at = Date.now() + 60_000
    const start = Date.now()
    await a.broadcast('revoked', 'jti-1', at)
    const took = await until('the member to be heard', () => heard.some(([m]) => m === 'jti-1'), 3000)
    t.same(heard.find(([m]) => m === 'jti-1'), ['jti-1', at], `heard within ${took} ms`)
    t.ok(Date.now() - start < 3000)
  }],
  ['a subscriber registered after the broadcast gets the unexpired members (resync)', async (t, s) => {
    const [a, b] = await s.pair(t)
    const now = Date.now()
    await a.broadcast('revoked', 'short', now + 150)
    await a.broadcast('revoked', 'long', now + 60_000)
    const early: string[] = []
    b.subscribe('revoked', (m) => early.push(m))
    await b.synced()
    t.same(early.toSorted(), ['long', 'short'], 'synced(): a member not yet expired is resynced')
    await sleep(300)
    const late: string[] = []
    b.subscribe('revoked', (m) => late.push(m))
    await b.synced()
    t.same(late, ['long'], 'synced() again for a later subscriber; an expired member is not resynced')
  }],
]

for (const subject of subjects) {
  t.test(subject.name, async (t) => {
    for (const [name, run] of contract) await t.test(name, (t) => run(t, subject))
  })
}

t.test('memory: at `max` live keys, writes of new keys fail like an unreachable store', async (t) => {
  const store = new MemoryStore({ max: 2 })
  await store.set('a', '1', undefined)
  await store.set('b', '1', undefined)
  await t.rejects(store.set('c', '1', undefined), StoreUnavailable)
  await t.rejects(store.setIfAbsent('c', '1', 1000), StoreUnavailable)
  await store.set('a', '2', undefined)
  t.equal(await store.get('a'), '2', 'an existing key can still be replaced')
  t.equal(await store.compareAndSet('b', '1', '2', undefined), true)
})

const allOps = (s: Store): Array<[string, () => Promise<unknown>]> => [
  ['setIfAbsent', () => s.setIfAbsent('k', 'v', 1000)],
  ['set', () => s.set('k', 'v', undefined)],
  ['get', () => s.get('k')],
  ['take', () => s.take('k')],
  ['delete', () => s.delete('k')],
  ['expire', () => s.expire('k', 1000)],
  ['compareAndSet', () => s.compareAndSet('k', 'v', 'w', 1000)],
  ['broadcast', () => s.broadcast('b', 'm', Date.now() + 1000)],
]

/** every operation at once: each must reject with StoreUnavailable; returns the slowest time */
async function allReject (t: Test, store: Store): Promise<number> {
  const start = Date.now()
  const results = await Promise.allSettled(allOps(store).map(async ([name, op]) => {
    try {
      await op()
    } catch (err) {
      return [name, err, Date.now() - start] as const
    }
    throw new Error(`${name} did not reject`)
  }))
  let slowest = 0
  for (const r of results) {
    if (r.status === 'rejected') {
      t.fail(String(r.reason))
      continue
    }
    const [name, err, ms] = r.value
    t.ok(isStoreUnavailable(err), `${name} rejects with StoreUnavailable (${ms} ms)`)
    slowest = Math.max(slowest, ms)
  }
  return slowest
}

t.test('redis killed: operations fail fast, `up` goes false, and a restart on the same port heals it', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const log: Logged = []
  const prefix = `t-${randomUUID()}:`
  const a = await openRedis(t, redis.url, prefix, { log })
  const b = await openRedis(t, redis.url, prefix)
  const states: boolean[] = []
  a.onStateChange((up) => states.push(up))
  const heard: string[] = []
  b.subscribe('revoked', (m) => heard.push(m))
  await a.broadcast('revoked', 'before', Date.now() + 60_000)
  await until('the first member', () => heard.includes('before'), 3000)

  await redis.kill()
  const down = await until('`up` to go false', () => !a.up, 3000)
  t.same(states, [false], `onStateChange(false) once (${down} ms after the kill)`)
  const slowest = await allReject(t, a)
  t.ok(slowest < 1500, `every operation rejected within ${slowest} ms (no hang)`)
  await sleep(1500) // several reconnection attempts
  t.same(states, [false], 'no repeated transitions while retrying')
  t.equal(warnings(log).length, 1, 'one warning for the outage, not one per retry')

  // a subscriber added while Redis is down: synced() waits for it, and never rejects
  const lateHeard: string[] = []
  let synced = false
  a.subscribe('revoked', (m) => lateHeard.push(m))
  void a.synced().then(() => { synced = true })
  await sleep(300)
  t.equal(synced, false, 'synced() stays pending while the store is down')

  await redis.restart()
  await until('synced() after the restart', () => synced, 5000)
  const back = await until('`up` after the restart', () => a.up, 5000)
  t.same(states, [false, true], `up again ${back} ms after the restart`)
  await a.set('k', 'v', undefined)
  t.equal(await a.get('k'), 'v', 'the same store works again (scripts reloaded too)')
  t.equal(await a.compareAndSet('k', 'v', 'w', undefined), true)

  // a broadcast while b's subscriber may still be reconnecting: heard by pub/sub or the resync
  const c = await openRedis(t, redis.url, prefix)
  await c.broadcast('revoked', 'during', Date.now() + 60_000)
  const took = await until('the member broadcast after the restart', () => heard.includes('during'), 5000)
  t.pass(`heard ${took} ms after it was broadcast`)
  await until('the subscriber added during the outage to hear it too', () => lateHeard.includes('during'), 3000)
  t.equal(infos(log).length, 2, 'one info per recovery (start, restart)')
})

t.test('redis paused (SIGSTOP): operations reject within the timeout, `up` goes false, then recovers', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = await openRedis(t, redis.url, `t-${randomUUID()}:`, { commandTimeoutMs: 500 })
  const states: boolean[] = []
  store.onStateChange((up) => states.push(up))
  await store.set('kept', 'v', undefined)
  redis.pause()
  t.teardown(() => redis.resume())
  const slowest = await allReject(t, store)
  t.ok(slowest >= 450 && slowest < 1000, `every operation rejected after the 500 ms timeout (${slowest} ms)`)
  const down = await until('`up` to go false', () => !store.up, 3000)
  t.same(states, [false], `up went false ${down} ms later (the health PING timed out)`)
  redis.resume()
  const back = await until('`up` again', () => store.up, 3000)
  t.same(states, [false, true], `up again ${back} ms after SIGCONT`)
  t.equal(await store.get('kept'), 'v', 'same connection, same data')
  // the timed-out commands were still sent: the server ran them once it could (StoreUnavailable
  // means "may or may not have happened")
  t.equal(await store.get('k'), undefined, 'the timed-out delete ran after SIGCONT')
})

t.test('the password in the URL is in no error and no log line', async (t) => {
  const dead = await startRedis()
  const port = dead.port
  await dead.stop()
  const log: Logged = []
  const store = new RedisStore({ url: `redis://:s3cret-pass@127.0.0.1:${port}`, keyPrefix: 'p:', log: logger(log) })
  t.teardown(() => store.close())
  const before = await allReject(t, store)
  t.ok(before < 100, `before start(): rejected at once (${before} ms)`)
  store.start()
  await until('a failed connection attempt', () => log.length > 0, 3000)
  const errors: unknown[] = []
  for (const [, op] of allOps(store)) await op().catch((err: unknown) => errors.push(err))
  t.equal(errors.length, allOps(store).length)
  for (const err of errors) {
    t.ok(isStoreUnavailable(err))
    for (let e: unknown = err; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
      const text = e instanceof Error ? `${e.message} ${e.stack}` : String(e)
      t.notMatch(text, /s3cret-pass/, 'no password in the message or its cause')
    }
  }
  t.notMatch(JSON.stringify(log), /s3cret-pass/, 'nor in the log')
  t.equal(store.up, false)
  await store.close()
  await store.close()
  t.pass('close is idempotent')
})
