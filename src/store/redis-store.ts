import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { createRequire } from 'node:module'
import type { createClient as CreateClient } from 'redis'
import { StoreUnavailable, type Store } from './store.ts'

export interface RedisStoreOptions {
  /** redis[s]://[[user][:password]@]host[:port][/db] */
  url: string
  /** prepended to every key and channel, as given */
  keyPrefix: string
  /** every command (and the health PING) rejects after this long; default 1000 */
  commandTimeoutMs?: number
  log?: Pick<FastifyBaseLogger, 'warn' | 'info'>
}

type Listener = (member: string, expiresAtMs: number) => void
interface Channel {
  listeners: Listener[]
  onMessage: (message: string) => void
  /** resolved at this channel's next successful resync: listeners that have not heard the set yet */
  waiting: Array<() => void>
}
type Client = ReturnType<typeof CreateClient>

/**
 * node-redis (`redis`), required when a store is built — only with store.url: a gateway without
 * one never loads its modules (test/bench/README.md).
 */
const require = createRequire(import.meta.url)
const loadClient = (): typeof CreateClient => (require('redis') as { createClient: typeof CreateClient }).createClient

/**
 * Lua, not GETDEL: one code path from Redis 6.0 (GETDEL is 6.2+). Each script touches only
 * KEYS[1] (the broadcast script also PUBLISHes, which names no key).
 */
const TAKE = "local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v"
const CAS = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1`
// ARGV: member, expiresAtMs, now, message. The set lives as long as its latest member.
const BROADCAST = `redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2]))) end
redis.call('PUBLISH', KEYS[1], ARGV[4])
return 1`

const sha1 = (script: string): string => createHash('sha1').update(script).digest('hex')
const SHA = new Map([TAKE, CAS, BROADCAST].map((s) => [s, sha1(s)]))

/** PX takes a positive integer; the memory store takes any number */
const px = (ttlMs: number): string => String(Math.max(1, Math.ceil(ttlMs)))

/**
 * The store shared by replicas: one Redis. No command waits for a connection (no offline
 * queue) or for a reply longer than `commandTimeoutMs`: a down or hung Redis makes operations
 * reject with `StoreUnavailable` within that time. `start()` connects in the background and
 * reconnects forever (backoff up to 2 s); a PING every second tells a hung server from a live one.
 */
export class RedisStore implements Store {
  readonly kind = 'redis'
  readonly #client: Client
  readonly #sub: Client
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #log: Pick<FastifyBaseLogger, 'warn' | 'info'> | undefined
  readonly #secrets: string[]
  readonly #channels = new Map<string, Channel>()
  /** first resyncs not yet done: what `synced()` waits for */
  readonly #unsynced = new Set<Promise<void>>()
  readonly #stateListeners: Array<(up: boolean) => void> = []
  #up = false
  /** what was last logged: undefined before the first transition */
  #logged: boolean | undefined
  #lastError: unknown
  #pinging = false
  #timer: NodeJS.Timeout | undefined
  #started = false
  #closed: Promise<void> | undefined
  #closing = false

  constructor (opts: RedisStoreOptions) {
    this.#prefix = opts.keyPrefix
    this.#timeoutMs = opts.commandTimeoutMs ?? 1000
    this.#log = opts.log
    this.#secrets = secretsOf(opts.url)
    try {
      this.#client = loadClient()({
        url: opts.url,
        RESP: 3,
        disableOfflineQueue: true,
        commandOptions: { timeout: this.#timeoutMs, rejectInFlight: true },
        socket: {
          connectTimeout: this.#timeoutMs,
          // 50 ms, 100 ms, … capped at 2 s, with jitter so replicas do not reconnect in step
          reconnectStrategy: (retries) => Math.min(50 * 2 ** Math.min(retries, 10), 2000) + Math.floor(Math.random() * 100),
        },
      })
    } catch {
      // the parser's error may quote the URL, password included
      throw new Error('store.url is not a valid Redis URL')
    }
    this.#sub = this.#client.duplicate()
    this.#client.on('error', (err: unknown) => { this.#lastError = err; this.#setUp(false) })
    this.#client.on('ready', () => { this.#setUp(true) })
    this.#client.on('end', () => { this.#setUp(false) })
    // the subscriber reconnects on its own and resyncs at 'ready'; the client's state is the one reported
    this.#sub.on('error', () => {})
    this.#sub.on('ready', () => { for (const name of this.#channels.keys()) this.#listen(name) })
  }

  /** Connect in the background: never throws, never waits. Idempotent. */
  start (): void {
    if (this.#started || this.#closed !== undefined) return
    this.#started = true
    // connect() settles when ready (retrying until then) or rejects when closed meanwhile
    this.#client.connect().catch(() => {})
    this.#sub.connect().catch(() => {})
    this.#timer = setInterval(() => { void this.#ping() }, 1000)
    this.#timer.unref()
  }

  get up (): boolean {
    return this.#up
  }

  /**
   * The command connection, for rate-limiter-flexible (src/ratelimit): its commands get the same
   * timeouts and no offline queue, and its keys the same prefix (it adds it itself).
   */
  get limiterClient (): unknown {
    return this.#client
  }

  onStateChange (listener: (up: boolean) => void): void {
    this.#stateListeners.push(listener)
  }

  async setIfAbsent (key: string, value: string, ttlMs: number | undefined): Promise<boolean> {
    return await this.#call(['SET', this.#key(key), value, 'NX', ...(ttlMs === undefined ? [] : ['PX', px(ttlMs)])]) !== null
  }

  async set (key: string, value: string, ttlMs: number | undefined): Promise<void> {
    await this.#call(['SET', this.#key(key), value, ...(ttlMs === undefined ? [] : ['PX', px(ttlMs)])])
  }

  async get (key: string): Promise<string | undefined> {
    return stringOrUndefined(await this.#call(['GET', this.#key(key)]))
  }

  async take (key: string): Promise<string | undefined> {
    return stringOrUndefined(await this.#script(TAKE, this.#key(key), []))
  }

  async delete (key: string): Promise<void> {
    await this.#call(['DEL', this.#key(key)])
  }

  async expire (key: string, ttlMs: number): Promise<boolean> {
    return await this.#call(['PEXPIRE', this.#key(key), px(ttlMs)]) === 1
  }

  async compareAndSet (key: string, expected: string, next: string, ttlMs: number | undefined): Promise<boolean> {
    const args = ttlMs === undefined ? [expected, next] : [expected, next, px(ttlMs)]
    return await this.#script(CAS, this.#key(key), args) === 1
  }

  async broadcast (name: string, member: string, expiresAtMs: number): Promise<void> {
    const message = JSON.stringify([member, expiresAtMs])
    await this.#script(BROADCAST, this.#channel(name), [member, String(expiresAtMs), String(Date.now()), message])
  }

  subscribe (name: string, listener: Listener): void {
    const heard = this.#firstResync()
    const channel = this.#channels.get(name)
    if (channel !== undefined) {
      channel.listeners.push(listener)
      if (!this.#sub.isReady) { channel.waiting.push(heard); return }
      this.#resync(name, [listener]).then(heard, (err: unknown) => {
        // the next (re)connection resyncs every listener of the channel, this one included
        channel.waiting.push(heard)
        this.#warnResync(name, err)
      })
      return
    }
    const listeners = [listener]
    const onMessage = (message: string): void => {
      const parsed = parseMessage(message)
      if (parsed === undefined) return
      for (const l of listeners) l(parsed[0], parsed[1])
    }
    this.#channels.set(name, { listeners, onMessage, waiting: [heard] })
    // not ready yet: the subscriber's 'ready' subscribes every channel
    if (this.#sub.isReady) this.#listen(name)
  }

  synced (): Promise<void> {
    return Promise.all(this.#unsynced).then(() => {})
  }

  /** a promise in #unsynced until the returned function is called */
  #firstResync (): () => void {
    const { promise, resolve } = Promise.withResolvers<void>()
    this.#unsynced.add(promise)
    return () => { this.#unsynced.delete(promise); resolve() }
  }

  /** Disconnect both connections and stop the health PING. Idempotent. */
  close (): Promise<void> {
    // set before #close runs: its connections' 'end' events must not read as Redis going away
    this.#closing = true
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close (): Promise<void> {
    clearInterval(this.#timer)
    // the subscriber has nothing to finish; the client may: let its commands settle (each has a timeout)
    this.#sub.destroy()
    if (this.#client.isReady) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        this.#client.close().catch(() => {}),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#timeoutMs) }),
      ])
      clearTimeout(timer)
    }
    this.#client.destroy()
    this.#setUp(false)
  }

  /** SUBSCRIBE (node-redis keeps it across reconnections), then read what is already there */
  #listen (name: string): void {
    const channel = this.#channels.get(name)
    if (channel === undefined) return
    this.#sub.subscribe(this.#channel(name), channel.onMessage)
      .then(async () => {
        await this.#resync(name, channel.listeners)
        for (const heard of channel.waiting.splice(0)) heard()
      })
      .catch((err: unknown) => { this.#warnResync(name, err) })
  }

  async #resync (name: string, listeners: readonly Listener[]): Promise<void> {
    const reply = await this.#sub.sendCommand(['ZRANGEBYSCORE', this.#channel(name), `(${Date.now()}`, '+inf', 'WITHSCORES'])
    for (const [member, expiresAtMs] of scoredMembers(reply)) for (const l of listeners) l(member, expiresAtMs)
  }

  #warnResync (name: string, err: unknown): void {
    // the next (re)connection of the subscriber tries again
    if (this.#closed === undefined) this.#log?.warn({ err: this.#safe(err), broadcast: name }, 'store: could not subscribe to a Redis broadcast set')
  }

  async #ping (): Promise<void> {
    if (this.#pinging || !this.#client.isReady) return
    this.#pinging = true
    try {
      await this.#client.sendCommand(['PING'])
      this.#setUp(true)
    } catch (err) {
      this.#lastError = err
      this.#setUp(false)
    } finally {
      this.#pinging = false
    }
  }

  #setUp (up: boolean): void {
    if (this.#logged !== up && !this.#closing) {
      if (up) this.#log?.info('store: Redis is reachable')
      else this.#log?.warn({ err: this.#safe(this.#lastError) }, 'store: Redis is unreachable; retrying')
      this.#logged = up
    }
    if (this.#up === up) return
    this.#up = up
    for (const listener of this.#stateListeners) listener(up)
  }

  async #call (args: string[]): Promise<unknown> {
    try {
      return await this.#client.sendCommand(args)
    } catch (err) {
      throw this.#unavailable(args[0] ?? '', err)
    }
  }

  /** EVALSHA, and EVAL when Redis does not have the script (first use, or after a restart) */
  async #script (script: string, key: string, args: string[]): Promise<unknown> {
    try {
      try {
        return await this.#client.sendCommand(['EVALSHA', SHA.get(script) ?? '', '1', key, ...args])
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
        return await this.#client.sendCommand(['EVAL', script, '1', key, ...args])
      }
    } catch (err) {
      throw this.#unavailable('script', err)
    }
  }

  #unavailable (command: string, err: unknown): StoreUnavailable {
    return new StoreUnavailable(`Redis ${command} failed: ${this.#safe(err).message}`, { cause: err })
  }

  /** the error's name and message, without the URL's password */
  #safe (err: unknown): { name: string, message: string } {
    let message = err instanceof Error ? err.message : String(err)
    for (const secret of this.#secrets) message = message.replaceAll(secret, '***')
    return { name: err instanceof Error ? err.name : 'Error', message }
  }

  #key (key: string): string {
    return this.#prefix + key
  }

  #channel (name: string): string {
    return `${this.#prefix}bcast:${name}`
  }
}

function secretsOf (url: string): string[] {
  try {
    const raw = new URL(url).password
    return raw === '' ? [] : [...new Set([raw, decodeURIComponent(raw)])]
  } catch {
    return []
  }
}

function stringOrUndefined (reply: unknown): string | undefined {
  return typeof reply === 'string' ? reply : undefined
}

/** a published [member, expiresAtMs]; anything else is ignored */
function parseMessage (message: unknown): [string, number] | undefined {
  if (typeof message !== 'string') return undefined
  let value: unknown
  try {
    value = JSON.parse(message)
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined
  const [member, expiresAtMs] = value as unknown[]
  if (typeof member !== 'string' || typeof expiresAtMs !== 'number' || !Number.isFinite(expiresAtMs)) return undefined
  return [member, expiresAtMs]
}

/** ZRANGEBYSCORE … WITHSCORES: flat [m, s, …] (RESP2) or [[m, s], …] (RESP3) */
function scoredMembers (reply: unknown): Array<[string, number]> {
  if (!Array.isArray(reply)) return []
  const flat: unknown[] = reply.flatMap((item: unknown) => Array.isArray(item) ? item as unknown[] : [item])
  const out: Array<[string, number]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const member = flat[i]
    const score = Number(flat[i + 1])
    if (typeof member === 'string' && Number.isFinite(score)) out.push([member, score])
  }
  return out
}
