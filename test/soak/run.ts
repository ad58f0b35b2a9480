#!/usr/bin/env node
// The soak (issue 17): `npm run soak` (SOAK_SECONDS, default 60, after SOAK_PREWARM_SECONDS of
// the same load, default 10, whose samples do not count). Two real gateway processes
// sharing a real redis-server, the dev IdP and an upstream the soak controls, all on loopback,
// behind a round-robin balancer without affinity. For the whole run, at once: well-behaved users
// (allowed and denied calls, tools/list, sessions opened and ended), a reader of a GET stream, a
// grant loop (fresh ID-JAGs → access tokens, a replayed one refused), a flooder (one principal,
// many calls and streams in parallel), two slow readers (one never reads, one reads 1 KiB/s);
// in the middle the upstream fails for 5 s (503s and closed connections). Every request's answer
// is checked against what its sender expects; RSS and open descriptors of both gateways are
// sampled. Prints a summary and PASS/FAIL per criterion; exits 0 when all pass, 1 otherwise.
// Every process it starts is stopped, on failure and on SIGINT too. SOAK_LOGS=DIR keeps the
// replicas' logs there.
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { generatePrivateJwk } from '../../src/authorization-server/keys.ts'
import { startBalancer } from '../helpers/balancer.ts'
import { startDevIdp } from '../helpers/dev-idp.ts'
import { basic } from '../helpers/ema.ts'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { POST_HEADERS, readMessages, type RpcMessage } from '../helpers/raw-mcp.ts'
import { startRedis } from '../helpers/redis-server.ts'
import { startSoakUpstream, type SoakUpstream } from './upstream.ts'

// --- the plan -------------------------------------------------------------------------------

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
if (!Number.isFinite(SECONDS) || SECONDS < 15) {
  console.error('SOAK_SECONDS must be a number ≥ 15')
  process.exit(2)
}
const DURATION_MS = SECONDS * 1000
/** load before the clock starts: under it RSS climbs from ~165 to ~290 MiB in 10–20 s */
const PREWARM_MS = Number(process.env.SOAK_PREWARM_SECONDS ?? 10) * 1000
/** the first quarter: memory and descriptors may still grow */
const WARMUP_MS = DURATION_MS * 0.25
const OUTAGE_MS = 5000
const OUTAGE_FROM_MS = Math.round(DURATION_MS / 2 - OUTAGE_MS / 2)
const CIRCUIT = { consecutiveFailures: 5, halfOpenAfterMs: 1000 }
/** after the outage: the open circuit's wait, its probe, and slack for a busy 2-CPU machine */
const GRACE_MS = CIRCUIT.halfOpenAfterMs + 2000
const MAX_STREAMS = 4
const SUBJECT_RATE = '100/s'
const SAMPLE_MS = Math.min(5000, Math.max(1000, Math.round(DURATION_MS / 30)))
const REQUEST_TIMEOUT_MS = 15_000
/**
 * Criteria on the samples after warm-up. V8 resizes its heap in steps when the load changes (the
 * outage's end brings a burst), by 20–40 % under this load and then flat for minutes, and a step
 * may come in any third of a short run; a leak keeps growing. So: RSS has settled — over the last
 * RSS_SETTLE_MS it moves by at most RSS_SETTLE_MAX — and ends within RSS_BOUND × its value after
 * warm-up; descriptors: last third's median against the middle third's.
 */
const RSS_SETTLE_MS = 5000
const RSS_SETTLE_MAX = 0.05
const RSS_BOUND = 1.6
const FD_GROWTH_MAX = 20

const USERS = ['alice', 'bob', 'carol', 'dave'] as const
const LOOPS_PER_USER = 2
const READER = 'rita'
const FLOODER = 'mallory'
const SLOW = 'sam'
const FLOOD_CALLS = 8
const FLOOD_STREAMS = 6
const ALL_USERS = [...USERS, READER, FLOODER, SLOW]

const EMA_CLIENT = { id: 'mcp-client', secret: 'mcp-client-secret-0123456789' }
const EXCHANGE_CLIENT = { id: 'exchange-client', secret: 'exchange-secret-0123456789' }
const PROTOCOL = '2025-11-25'

// --- processes, stopped in reverse order whatever happens ------------------------------------

const cleanups: Array<() => Promise<unknown>> = []
let cleaning: Promise<void> | undefined
async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {})
  })()
  await cleaning
}
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    console.error(`\n${signal}: stopping everything the soak started`)
    void cleanup().finally(() => process.exit(130))
  })
}

// --- what happened ----------------------------------------------------------------------------

type Verdict = 'ok' | 'refused' | 'outage' | 'unexpected'
const counts = new Map<string, Map<string, number>>()
const verdicts = new Map<string, Record<Verdict, number>>()
const latencies = new Map<string, number[]>()
const unexpected: string[] = []
/** well-behaved classes: unexpected answers there fail the soak */
const WELL_BEHAVED = new Set(['user/init', 'user/ack', 'user/echo', 'user/denied', 'user/list', 'user/delete', 'reader/open', 'reader/stream', 'grant/redeem', 'grant/replay', 'grant/idp'])

let t0 = 0
let outageFrom = Infinity
let outageTo = Infinity
const now = (): number => Date.now() - t0
/** a request that overlapped the outage or the grace after it may fail with the outage */
const duringOutage = (start: number, end: number): boolean => start < outageTo + GRACE_MS && end >= outageFrom
/** good well-behaved answers to requests started after the outage and its grace */
let goodAfterOutage = 0
const deadline = (): boolean => interrupted || now() >= DURATION_MS

function record (cls: string, outcome: string, verdict: Verdict, start: number, detail = ''): void {
  const end = now()
  const byOutcome = counts.get(cls) ?? new Map<string, number>()
  counts.set(cls, byOutcome)
  byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1)
  const v = verdicts.get(cls) ?? { ok: 0, refused: 0, outage: 0, unexpected: 0 }
  verdicts.set(cls, v)
  v[verdict]++
  if (verdict === 'ok' && !duringOutage(start, end)) {
    const list = latencies.get(cls) ?? []
    latencies.set(cls, list)
    list.push(end - start)
  }
  if (verdict === 'ok' && WELL_BEHAVED.has(cls) && start > outageTo + GRACE_MS) goodAfterOutage++
  if (verdict === 'unexpected' && unexpected.length < 30) unexpected.push(`${(start / 1000).toFixed(2)}–${(end / 1000).toFixed(2)} s ${cls}: ${outcome} ${detail}`.slice(0, 400))
}

// --- HTTP ---------------------------------------------------------------------------------------

const agent = new Agent({ keepAliveTimeout: 10_000, connections: 256 })
cleanups.push(() => agent.close())

interface Answer {
  readonly status: number
  readonly messages: RpcMessage[]
  readonly headers: Record<string, string | string[] | undefined>
  /** a network failure or timeout instead of an answer */
  readonly failure?: string
}

async function send (url: string, method: 'POST' | 'DELETE', headers: Record<string, string>, body?: unknown): Promise<Answer> {
  try {
    const res = await request(url, {
      dispatcher: agent,
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    let messages: RpcMessage[] = []
    try {
      messages = await readMessages(res)
    } catch (err) {
      return { status: res.statusCode, messages, headers: res.headers, failure: `unreadable body: ${(err as Error).message}` }
    }
    return { status: res.statusCode, messages, headers: res.headers }
  } catch (err) {
    return { status: 0, messages: [], headers: {}, failure: (err as Error).name === 'TimeoutError' ? 'timeout' : String((err as Error).message) }
  }
}

const outcomeOf = (a: Answer): string => a.failure !== undefined ? (a.status === 0 ? a.failure : `${a.status} ${a.failure}`) : String(a.status)
const describe = (a: Answer): string => `${outcomeOf(a)} ${JSON.stringify(a.messages).slice(0, 200)}`

/** what the upstream being down may cause: 502/503/504 with a JSON-RPC error, or an error event in a 200 stream */
function isOutageAnswer (a: Answer): boolean {
  if (a.failure !== undefined) return false
  const rpcError = a.messages.some((m) => m.error?.code === -32603)
  return ([502, 503, 504].includes(a.status) || a.status === 200) && rpcError
}

// --- the run ----------------------------------------------------------------------------------

async function main (): Promise<boolean> {
  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const balancer = await startBalancer()
  cleanups.push(() => balancer.close())
  const publicUrl = balancer.url
  const resource = `${publicUrl}/mcp/soak`
  const idp = await startDevIdp(`
users:
${ALL_USERS.map((u) => `  - { username: ${u}, password: ${u}-pw, email: ${u}@example.com, groups: [staff] }`).join('\n')}
clients:
  - { clientId: ${EXCHANGE_CLIENT.id}, secret: ${EXCHANGE_CLIENT.secret}, idJagClientId: ${EMA_CLIENT.id} }
policy:
  - { audience: "${publicUrl}", resources: ["${resource}"], groups: [staff], scopes: [tools.read] }
`)
  cleanups.push(() => idp.close())
  const upstream = await startSoakUpstream()
  cleanups.push(() => upstream.close())
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-soak-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const keysFile = join(dir, 'keys.json')
  await writeFile(keysFile, JSON.stringify({ keys: [await generatePrivateJwk('ES256', 'current')] }), { mode: 0o600 })
  const yaml = `
publicUrl: ${publicUrl}
listen: { host: 127.0.0.1, port: 0, drainTimeoutMs: 3000 }
store: { url: "${redis.url}" }
limits: { maxStreamsPerPrincipal: ${MAX_STREAMS} }
authorization:
  signingKeys: ${keysFile}
  accessTokenTtlSeconds: 300
  clients:
    - { clientId: ${EMA_CLIENT.id}, auth: client_secret_basic, secret: "\${EMA_SECRET}" }
  identityProviders:
    - { issuer: "${idp.issuer}", algorithms: [ES256], claims: { groups: groups, email: email } }
servers:
  soak:
    upstream: { url: ${upstream.url} }
    scopes: [tools.read]
    tools:
      - { deny: ["secret_*"] }
      - { allow: [echo] }
    rateLimits: [{ per: subject, rate: ${SUBJECT_RATE} }]
    circuitBreaker: { consecutiveFailures: ${CIRCUIT.consecutiveFailures}, halfOpenAfterMs: ${CIRCUIT.halfOpenAfterMs} }
`
  const env = {
    PORTCULLIS_SESSION_KEY: 'soak-replicas-share-this-session-key-0123456789',
    PORTCULLIS_AUDIT_PSEUDONYM_KEY: 'soak-replicas-share-this-pseudonym-key-0123456789',
    EMA_SECRET: EMA_CLIENT.secret,
  }
  const replicas: GatewayProcess[] = []
  cleanups.push(async () => await Promise.allSettled(replicas.map(async (r) => await r.kill())))
  for (const started of await Promise.all([0, 1].map(async () => await startGatewayProcess({ yaml, env })))) replicas.push(started)
  balancer.setTargets(replicas.map((r) => r.url))
  const mcpUrl = `${publicUrl}/mcp/soak`
  console.log(`soak: ${SECONDS} s after a ${PREWARM_MS / 1000} s pre-warm, outage ${(OUTAGE_FROM_MS / 1000).toFixed(1)}–${((OUTAGE_FROM_MS + OUTAGE_MS) / 1000).toFixed(1)} s (+${GRACE_MS / 1000} s grace), ` +
    `replicas pid ${replicas.map((r) => r.pid).join(', ')}, balancer ${publicUrl}, redis ${redis.url}`)

  // -- tokens: password grant → token exchange at the IdP → jwt-bearer grant at the balancer
  const idJag = async (user: string): Promise<string> => {
    const form = async (body: Record<string, string>): Promise<Record<string, unknown>> => {
      const res = await request(`${idp.url}/token`, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(EXCHANGE_CLIENT.id, EXCHANGE_CLIENT.secret) },
        body: new URLSearchParams(body).toString(),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      const parsed = await res.body.json() as Record<string, unknown>
      if (res.statusCode !== 200) throw new Error(`IdP ${body.grant_type}: ${res.statusCode} ${JSON.stringify(parsed)}`)
      return parsed
    }
    const { id_token: idToken } = await form({ grant_type: 'password', username: user, password: `${user}-pw`, scope: 'openid' })
    const { access_token: jag } = await form({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
      subject_token: String(idToken),
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      audience: publicUrl,
      resource,
    })
    return String(jag)
  }
  const redeem = async (assertion: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await request(`${publicUrl}/oauth/token`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(EMA_CLIENT.id, EMA_CLIENT.secret) },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }
  const accessToken = async (user: string): Promise<string> => {
    const { status, body } = await redeem(await idJag(user))
    if (status !== 200 || typeof body.access_token !== 'string') throw new Error(`jwt-bearer grant for ${user}: ${status} ${JSON.stringify(body)}`)
    return body.access_token
  }
  /** a token per user, renewed after two minutes (they live five) */
  const tokens = new Map<string, { value: string, at: number }>()
  const tokenFor = async (user: string): Promise<string> => {
    const held = tokens.get(user)
    if (held !== undefined && Date.now() - held.at < 120_000) return held.value
    const value = await accessToken(user)
    tokens.set(user, { value, at: Date.now() })
    return value
  }
  for (const user of ALL_USERS) await tokenFor(user)

  const headersFor = (token: string, sessionId?: string): Record<string, string> => ({
    ...POST_HEADERS,
    authorization: `Bearer ${token}`,
    ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL }),
  })
  let nextId = 1

  /** initialize + notifications/initialized; the session id, or undefined when refused */
  const openSession = async (token: string, cls: 'user' | 'other'): Promise<string | undefined> => {
    const start = now()
    const init = await send(mcpUrl, 'POST', headersFor(token), {
      jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'soak', version: '1' } },
    })
    const sessionId = init.headers['mcp-session-id']
    const good = init.status === 200 && typeof sessionId === 'string' && init.messages.some((m) => m.id === 0 && m.result !== undefined)
    if (cls === 'user') {
      if (good) record('user/init', '200', 'ok', start)
      else record('user/init', outcomeOf(init), isOutageAnswer(init) && duringOutage(start, now()) ? 'outage' : 'unexpected', start, describe(init))
    }
    if (!good) return undefined
    const ackStart = now()
    const ack = await send(mcpUrl, 'POST', headersFor(token, sessionId), { jsonrpc: '2.0', method: 'notifications/initialized' })
    if (cls === 'user') {
      if (ack.status === 202) record('user/ack', '202', 'ok', ackStart)
      else record('user/ack', outcomeOf(ack), isOutageAnswer(ack) && duringOutage(ackStart, now()) ? 'outage' : 'unexpected', ackStart, describe(ack))
    }
    return sessionId
  }

  // -- well-behaved users: echo (70 %), a denied secret_* (20 %), tools/list (10 %); a new session every 50 calls
  const userLoop = async (user: string): Promise<void> => {
    let sessionId: string | undefined
    let calls = 0
    while (!deadline()) {
      const token = await tokenFor(user)
      if (sessionId === undefined) {
        sessionId = await openSession(token, 'user')
        if (sessionId === undefined) {
          await sleep(250)
          continue
        }
      }
      const id = nextId++
      const dice = Math.random()
      const start = now()
      if (dice < 0.7) {
        const message = `${user} ${id} ${'y'.repeat(Math.floor(Math.random() * 200))}`
        const a = await send(mcpUrl, 'POST', headersFor(token, sessionId), { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } })
        const result = a.messages.find((m) => m.id === id)?.result as { content?: Array<{ text?: string }> } | undefined
        if (a.status === 200 && a.failure === undefined && result?.content?.[0]?.text === message) record('user/echo', '200 result', 'ok', start)
        else record('user/echo', outcomeOf(a), isOutageAnswer(a) && duringOutage(start, now()) ? 'outage' : 'unexpected', start, describe(a))
      } else if (dice < 0.9) {
        const name = Math.random() < 0.5 ? 'secret_keys' : 'secret_admin'
        const a = await send(mcpUrl, 'POST', headersFor(token, sessionId), { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } })
        const error = a.messages.find((m) => m.id === id)?.error
        if (a.status === 200 && error?.code === -32602 && error.message.startsWith('Unknown tool')) record('user/denied', '200 -32602', 'ok', start)
        else record('user/denied', outcomeOf(a), isOutageAnswer(a) && duringOutage(start, now()) ? 'outage' : 'unexpected', start, describe(a))
      } else {
        const a = await send(mcpUrl, 'POST', headersFor(token, sessionId), { jsonrpc: '2.0', id, method: 'tools/list', params: {} })
        const tools = (a.messages.find((m) => m.id === id)?.result as { tools?: Array<{ name: string }> } | undefined)?.tools?.map((t) => t.name)
        if (a.status === 200 && tools !== undefined && tools.join() === 'echo') record('user/list', '200 [echo]', 'ok', start)
        else record('user/list', `${outcomeOf(a)}${tools === undefined ? '' : ` [${tools.join()}]`}`, isOutageAnswer(a) && duringOutage(start, now()) ? 'outage' : 'unexpected', start, describe(a))
      }
      if (++calls % 50 === 0 || deadline()) {
        const delStart = now()
        const a = await send(mcpUrl, 'DELETE', headersFor(token, sessionId))
        if (a.status >= 200 && a.status < 300) record('user/delete', String(a.status), 'ok', delStart)
        else record('user/delete', outcomeOf(a), isOutageAnswer(a) && duringOutage(delStart, now()) ? 'outage' : 'unexpected', delStart, describe(a))
        sessionId = undefined
      }
      await sleep(40 + Math.random() * 20)
    }
  }

  // -- a reader: holds a GET stream and reads it; the upstream pushes every 200 ms, so a 3 s gap is starvation
  let readerEvents = 0
  const readerLoop = async (): Promise<void> => {
    while (!deadline()) {
      const token = await tokenFor(READER)
      const sessionId = await openSession(token, 'other')
      if (sessionId === undefined) {
        await sleep(250)
        continue
      }
      const start = now()
      const abort = new AbortController()
      const stop = setInterval(() => { if (deadline()) abort.abort() }, 200)
      try {
        const res = await request(mcpUrl, { dispatcher: agent, method: 'GET', headers: { ...headersFor(token, sessionId), accept: 'text/event-stream' }, signal: abort.signal })
        if (res.statusCode !== 200) {
          const a: Answer = { status: res.statusCode, messages: await readMessages(res).catch(() => []), headers: res.headers }
          record('reader/open', outcomeOf(a), isOutageAnswer(a) && duringOutage(start, now()) ? 'outage' : 'unexpected', start, describe(a))
          await sleep(250)
          continue
        }
        record('reader/open', '200', 'ok', start)
        let last = now()
        try {
          for await (const chunk of res.body) {
            readerEvents += String(chunk).split('notifications/message').length - 1
            const at = now()
            if (at - last > 3000) record('reader/stream', `gap ${at - last} ms`, duringOutage(last, at) ? 'outage' : 'unexpected', last)
            last = at
          }
          if (!deadline()) record('reader/stream', 'ended', duringOutage(last, now()) ? 'outage' : 'unexpected', last)
        } catch (err) {
          if (!deadline()) record('reader/stream', `broke: ${(err as Error).message}`, duringOutage(last, now()) ? 'outage' : 'unexpected', last)
        }
      } catch (err) {
        if (!deadline()) record('reader/open', `failed: ${(err as Error).message}`, duringOutage(start, now()) ? 'outage' : 'unexpected', start)
      } finally {
        clearInterval(stop)
      }
    }
  }

  // -- grants: a fresh ID-JAG → an access token (200); every 4th time the previous ID-JAG again (400 invalid_grant)
  const grantLoop = async (): Promise<void> => {
    let previous: string | undefined
    for (let i = 1; !deadline(); i++) {
      const user = USERS[i % USERS.length] as string
      let start = now()
      let jag: string
      try {
        jag = await idJag(user)
      } catch (err) {
        record('grant/idp', 'failed', 'unexpected', start, (err as Error).message)
        await sleep(1000)
        continue
      }
      record('grant/idp', 'id-jag', 'ok', start)
      start = now()
      try {
        const { status, body } = await redeem(jag)
        if (status === 200 && typeof body.access_token === 'string' && body.token_type === 'Bearer') record('grant/redeem', '200', 'ok', start)
        else record('grant/redeem', String(status), 'unexpected', start, JSON.stringify(body))
        if (i % 4 === 0 && previous !== undefined) {
          start = now()
          const replay = await redeem(previous)
          if (replay.status === 400 && replay.body.error === 'invalid_grant') record('grant/replay', '400 invalid_grant', 'ok', start)
          else record('grant/replay', String(replay.status), 'unexpected', start, JSON.stringify(replay.body))
        }
      } catch (err) {
        record('grant/redeem', 'failed', 'unexpected', start, (err as Error).message)
      }
      previous = jag
      await sleep(700 + Math.random() * 300)
    }
  }

  // -- the flooder: one principal, calls back to back from many loops and as many GET streams as it can hold
  const floodSession = async (): Promise<{ token: string, sessionId: string }> => {
    for (;;) {
      const token = await tokenFor(FLOODER)
      const sessionId = await openSession(token, 'other')
      if (sessionId !== undefined) return { token, sessionId }
      if (deadline()) return { token, sessionId: '' }
      await sleep(250)
    }
  }
  const floodVerdict = (a: Answer, start: number): Verdict => {
    if (a.status === 429) return 'refused'
    if (isOutageAnswer(a) && duringOutage(start, now())) return 'outage'
    return 'unexpected'
  }
  const floodCalls = async (): Promise<void> => {
    const { token, sessionId } = await floodSession()
    while (!deadline()) {
      const id = nextId++
      const start = now()
      const a = await send(mcpUrl, 'POST', headersFor(token, sessionId), { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'flood' } } })
      const result = a.messages.find((m) => m.id === id)?.result
      if (a.status === 200 && result !== undefined) record('flood/call', '200 result', 'ok', start)
      else {
        const verdict = floodVerdict(a, start)
        record('flood/call', outcomeOf(a), verdict, start, describe(a))
        if (verdict === 'refused' && a.messages[0]?.error?.code !== -31029) record('flood/call', '429 without -31029', 'unexpected', start, describe(a))
      }
    }
  }
  const floodStreams = async (): Promise<void> => {
    const { token, sessionId } = await floodSession()
    while (!deadline()) {
      const start = now()
      const abort = new AbortController()
      try {
        const res = await request(mcpUrl, { dispatcher: agent, method: 'GET', headers: { ...headersFor(token, sessionId), accept: 'text/event-stream' }, signal: abort.signal })
        if (res.statusCode === 200) {
          record('flood/stream', '200 open', 'ok', start)
          res.body.resume()
          res.body.on('error', () => {})
          await sleep(1000 + Math.random() * 2000)
          abort.abort()
        } else {
          const a: Answer = { status: res.statusCode, messages: await readMessages(res).catch(() => []), headers: res.headers }
          record('flood/stream', outcomeOf(a), floodVerdict(a, start), start, describe(a))
          await sleep(50)
        }
      } catch (err) {
        record('flood/stream', `failed: ${(err as Error).message}`, duringOutage(start, now()) ? 'outage' : 'unexpected', start)
      }
    }
  }

  // -- slow readers: a GET stream on a raw socket; one never reads after the head, one reads 1 KiB a second
  const slow = { opened: 0, closed: 0, bytes: 0, refused: 0 }
  const slowReader = async (mode: 'never' | 'trickle'): Promise<void> => {
    while (!deadline()) {
      const token = await tokenFor(SLOW)
      const sessionId = await openSession(token, 'other')
      if (sessionId === undefined) {
        await sleep(500)
        continue
      }
      const socket: Socket = connect(balancer.port, '127.0.0.1')
      socket.on('error', () => {})
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
      socket.write(`GET /mcp/soak HTTP/1.1\r\nHost: 127.0.0.1:${balancer.port}\r\nAuthorization: Bearer ${token}\r\n` +
        `Accept: text/event-stream\r\nMcp-Session-Id: ${sessionId}\r\nMcp-Protocol-Version: ${PROTOCOL}\r\n\r\n`)
      const head = await new Promise<string>((resolve) => {
        socket.once('data', (chunk: Buffer) => { socket.pause(); resolve(chunk.toString('latin1')) })
        socket.once('close', () => resolve(''))
      })
      if (!head.startsWith('HTTP/1.1 200')) {
        slow.refused++
        socket.destroy()
        await sleep(500)
        continue
      }
      slow.opened++
      const trickle = mode === 'trickle'
        ? setInterval(() => { slow.bytes += (socket.read(1024) as Buffer | null)?.length ?? 0 }, 1000)
        : undefined
      await Promise.race([closed, (async () => { while (!deadline() && !socket.destroyed) await sleep(200) })()])
      clearInterval(trickle)
      if (!deadline()) slow.closed++
      socket.destroy()
      await closed
    }
  }

  // -- samples of each replica's RSS and open descriptors
  const samples: Sample[] = []
  const sample = async (): Promise<void> => {
    const t = now()
    const rss = replicas.map((r) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${r.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024)
    const fds = replicas.map((r) => readdirSync(`/proc/${r.pid}/fd`).length)
    // V8's heap as the replica reports it, to tell a heap that grows from one that was resized
    const heap = await Promise.all(replicas.map(async (r) => {
      const text = await r.metrics().catch(() => '')
      return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 1048576
    }))
    samples.push({ t, rss, fds, heap })
  }

  // -- go
  t0 = Date.now() + PREWARM_MS
  void sample()
  const sampler = setInterval(() => { void sample() }, SAMPLE_MS)
  const outage = (async () => {
    await sleep(OUTAGE_FROM_MS - now())
    if (interrupted) return
    outageFrom = now()
    upstream.setDown(true)
    await sleep(OUTAGE_MS)
    upstream.setDown(false)
    outageTo = now()
  })()
  const workers = [
    ...USERS.flatMap((u) => Array.from({ length: LOOPS_PER_USER }, async () => await userLoop(u))),
    readerLoop(),
    grantLoop(),
    ...Array.from({ length: FLOOD_CALLS }, floodCalls),
    ...Array.from({ length: FLOOD_STREAMS }, floodStreams),
    slowReader('never'),
    slowReader('trickle'),
  ]
  const settled = await Promise.race([
    Promise.allSettled([...workers, outage]),
    sleep(DURATION_MS + REQUEST_TIMEOUT_MS + 10_000).then(() => undefined),
  ])
  clearInterval(sampler)
  const elapsed = now()
  const crashed = settled === undefined ? ['workers did not finish in time'] : settled.flatMap((s) => s.status === 'rejected' ? [String((s.reason as Error)?.stack ?? s.reason)] : [])

  // -- the gateways' own view, then a clean stop
  const metrics = await Promise.all(replicas.map(async (r) => await r.metrics().catch(() => '')))
  const exitCodes = await Promise.all(replicas.map(async (r) => await r.stop()))
  if (process.env.SOAK_LOGS !== undefined) {
    await mkdir(process.env.SOAK_LOGS, { recursive: true })
    await Promise.all(replicas.map(async (r, i) => await writeFile(join(process.env.SOAK_LOGS as string, `replica-${i + 1}.log`), `${r.rawLogs.join('\n')}\n${r.stderr()}`)))
  }
  return report({ elapsed, crashed, samples, replicas, metrics, exitCodes, upstream, slow, readerEvents, balancer: balancer.requestsPerTarget() })
}

// --- the report -------------------------------------------------------------------------------

interface Sample { t: number, rss: number[], fds: number[], heap: number[] }

interface Report {
  readonly elapsed: number
  readonly crashed: string[]
  readonly samples: Sample[]
  readonly replicas: GatewayProcess[]
  readonly metrics: string[]
  readonly exitCodes: Array<number | null>
  readonly upstream: SoakUpstream
  readonly slow: { opened: number, closed: number, bytes: number, refused: number }
  readonly readerEvents: number
  readonly balancer: number[]
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))] as number
}
/** the sum of a counter's samples whose labels match */
function metricSum (text: string, name: string, labels: RegExp = /./): number {
  let sum = 0
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) if (labels.test(m[1] as string)) sum += Number(m[2])
  return sum
}
const pad = (s: string | number, n: number): string => String(s).padStart(n)

function report (r: Report): boolean {
  const criteria: Array<[string, boolean, string]> = []
  const out: string[] = []
  const total = (cls: string, v: Verdict): number => verdicts.get(cls)?.[v] ?? 0
  const sumOver = (prefix: string, v: Verdict): number => [...verdicts.keys()].filter((c) => c.startsWith(prefix)).reduce((n, c) => n + total(c, v), 0)

  out.push('', `== soak summary: ${(r.elapsed / 1000).toFixed(1)} s (+ ${PREWARM_MS / 1000} s pre-warm), outage ${(outageFrom / 1000).toFixed(1)}–${(outageTo / 1000).toFixed(1)} s + ${GRACE_MS / 1000} s grace, ` +
    `balancer sent ${r.balancer.join(' / ')} requests to the replicas`)
  out.push(`${'class'.padEnd(14)} ${pad('requests', 8)} ${pad('ok', 7)} ${pad('refused', 7)} ${pad('outage', 6)} ${pad('unexp', 5)}  outcomes`)
  for (const cls of [...verdicts.keys()].sort()) {
    const v = verdicts.get(cls) as Record<Verdict, number>
    const n = v.ok + v.refused + v.outage + v.unexpected
    const outcomes = [...(counts.get(cls) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).map(([o, c]) => `${o}: ${c}`).join(', ')
    out.push(`${cls.padEnd(14)} ${pad(n, 8)} ${pad(v.ok, 7)} ${pad(v.refused, 7)} ${pad(v.outage, 6)} ${pad(v.unexpected, 5)}  ${outcomes.slice(0, 160)}`)
  }

  const calls = ['user/echo', 'user/denied', 'user/list'].flatMap((c) => latencies.get(c) ?? [])
  out.push(`latency of well-behaved calls outside the outage (${calls.length}): p50 ${quantile(calls, 0.5).toFixed(1)} ms, p99 ${quantile(calls, 0.99).toFixed(1)} ms, max ${Math.max(...calls).toFixed(0)} ms`)
  for (const cls of ['user/echo', 'user/denied', 'user/list', 'grant/redeem']) {
    const xs = latencies.get(cls) ?? []
    out.push(`  ${cls.padEnd(13)} p50 ${quantile(xs, 0.5).toFixed(1)} ms, p99 ${quantile(xs, 0.99).toFixed(1)} ms (${xs.length})`)
  }

  // the outage: what failed, and when calls worked again
  const echoes = sumOver('user/', 'outage') + total('reader/open', 'outage') + total('reader/stream', 'outage')
  const limited = r.metrics.map((m) => [...new Set([...m.matchAll(/^portcullis_rate_limited_total\{[^}]*limit="([^"]*)"/gm)].map((x) => x[1] as string))]
    .map((limit) => `${limit} ${metricSum(m, 'portcullis_rate_limited_total', new RegExp(`limit="${limit}"`))}`).join(', ') || 'none')
  const stalled = r.metrics.map((m) => metricSum(m, 'portcullis_streams_stalled_total'))
  const upstreamErrors = r.metrics.map((m) => [...m.matchAll(/^portcullis_upstream_errors_total\{([^}]*)\} (\S+)$/gm)]
    .map((x) => `${/reason="([^"]*)"/.exec(x[1] as string)?.[1]} ${x[2]}`).join(', '))
  const circuitLogs = r.replicas.map((g) => g.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('upstream circuit')).map((l) => String(l.msg).split(':')[0] ?? ''))
  out.push(`outage: well-behaved answers tolerated as outage errors ${echoes}; flooder ${sumOver('flood/', 'outage')}; the upstream refused or cut ${r.upstream.refusedWhileDown} requests`)
  r.replicas.forEach((_, i) => {
    out.push(`  replica ${i + 1}: circuit ${circuitLogs[i]?.length === 0 ? 'never opened' : `${circuitLogs[i]?.filter((m) => m.endsWith('open')).length} × open, last: ${circuitLogs[i]?.at(-1)}`}; ` +
      `upstream errors by reason: ${upstreamErrors[i] || 'none'}; 429s by limit: ${limited[i]}`)
  })
  out.push(`flooder: ${total('flood/call', 'refused')} calls and ${total('flood/stream', 'refused')} GET streams refused with 429; ${total('flood/call', 'ok')} calls answered, ${total('flood/stream', 'ok')} streams opened`)
  out.push(`slow readers: ${r.slow.opened} streams opened, ${r.slow.closed} closed under them, ${r.slow.refused} refused, ${r.slow.bytes} bytes read by the trickler; streams closed as stalled by the replicas ${stalled.join(' / ')}; the reader got ${r.readerEvents} pushed events`)
  out.push(`upstream tools/call: ${[...r.upstream.calls].map(([n, c]) => `${n} ${c}`).join(', ')}; GET streams open at the end ${r.upstream.openStreams}`)

  // memory and descriptors
  const after = r.samples.filter((s) => s.t >= WARMUP_MS)
  const third = (s: { t: number }): number => Math.min(2, Math.floor(3 * s.t / DURATION_MS))
  out.push(`RSS (MiB) and open descriptors, sampled every ${SAMPLE_MS / 1000} s (${r.samples.length} samples from the pre-warm on; warm-up ${PREWARM_MS / 1000} + ${WARMUP_MS / 1000} s; middle third vs last third medians)`)
  r.replicas.forEach((g, i) => {
    const rss = (ss: typeof r.samples): number[] => ss.map((s) => s.rss[i] as number)
    const fds = (ss: typeof r.samples): number[] => ss.map((s) => s.fds[i] as number)
    const mid = r.samples.filter((s) => third(s) === 1 && s.t >= WARMUP_MS)
    const last = r.samples.filter((s) => third(s) === 2)
    const [rssMid, rssLast, fdMid, fdLast] = [median(rss(mid)), median(rss(last)), median(fds(mid)), median(fds(last))]
    out.push(`  replica ${i + 1} (pid ${g.pid}): RSS start ${rss(r.samples)[0]?.toFixed(0)}, after warm-up min ${Math.min(...rss(after)).toFixed(0)} max ${Math.max(...rss(after)).toFixed(0)}, ` +
      `medians ${rssMid.toFixed(1)} → ${rssLast.toFixed(1)} (${((rssLast / rssMid - 1) * 100).toFixed(1)} %); ` +
      `fds start ${fds(r.samples)[0]}, after warm-up min ${Math.min(...fds(after))} max ${Math.max(...fds(after))}, medians ${fdMid} → ${fdLast}`)
    out.push(`    RSS ${r.samples.map((s) => (s.rss[i] as number).toFixed(0)).join(' ')}`)
    out.push(`    fds ${r.samples.map((s) => s.fds[i]).join(' ')}`)
    out.push(`    V8 heap used (MiB) ${r.samples.map((s) => (s.heap[i] as number).toFixed(0)).join(' ')}`)
    const end = rss(r.samples.filter((x) => x.t >= DURATION_MS - RSS_SETTLE_MS))
    const settled = end.length > 0 && Math.max(...end) <= Math.min(...end) * (1 + RSS_SETTLE_MAX)
    const base = rss(after)[0] ?? 0
    const final = end.at(-1) ?? Infinity
    criteria.push([`replica ${i + 1} RSS settled: within ${RSS_SETTLE_MAX * 100} % over the last ${RSS_SETTLE_MS / 1000} s, and at most ${RSS_BOUND} × its value after warm-up`,
      settled && final <= base * RSS_BOUND, `last ${RSS_SETTLE_MS / 1000} s ${end.map((v) => v.toFixed(0)).join(' ')} MiB; ${base.toFixed(0)} after warm-up → ${final.toFixed(0)} at the end (${(final / base).toFixed(2)} ×)`])
    criteria.push([`replica ${i + 1} descriptors flat: last-third median ≤ middle-third median + ${FD_GROWTH_MAX}`, fdLast <= fdMid + FD_GROWTH_MAX, `${fdMid} → ${fdLast}`])
  })

  // the criteria
  const wellUnexpected = [...WELL_BEHAVED].reduce((n, c) => n + total(c, 'unexpected'), 0)
  const wellOk = [...WELL_BEHAVED].reduce((n, c) => n + total(c, 'ok'), 0)
  criteria.unshift(
    ['well-behaved clients: 0 unexpected answers outside the outage window', wellUnexpected === 0 && wellOk > 0, `${wellUnexpected} unexpected of ${wellOk + wellUnexpected + echoes}`],
    ['flooder: refused with 429, never another answer outside the outage', sumOver('flood/', 'refused') > 0 && sumOver('flood/', 'unexpected') === 0, `${sumOver('flood/', 'refused')} × 429, ${sumOver('flood/', 'unexpected')} unexpected`],
    ['denied tools never reached the upstream', [...r.upstream.calls.keys()].every((n) => !n.startsWith('secret_')), [...r.upstream.calls.keys()].join(', ')],
    ['the outage was felt (errors during it) and every replica\'s circuit opened and closed again',
      echoes + sumOver('flood/', 'outage') > 0 && circuitLogs.every((l) => l.some((m) => m.endsWith('open')) && l.at(-1)?.endsWith('closed') === true),
      circuitLogs.map((l, i) => `replica ${i + 1}: ${l.join(' → ') || 'none'}`).join('; ')],
    ['well-behaved calls after the outage + grace all answered', goodAfterOutage > 0, `${goodAfterOutage} good answers after ${((outageTo + GRACE_MS) / 1000).toFixed(1)} s`],
    ['the slow readers held their streams and others were served (the reader was fed)', r.slow.opened > 0 && r.readerEvents > 0, `${r.slow.opened} slow streams, ${r.readerEvents} events to the reader`],
    ['every worker finished, both replicas stopped with exit code 0', r.crashed.length === 0 && r.exitCodes.every((c) => c === 0), `exit codes ${r.exitCodes.join(', ')}${r.crashed.length === 0 ? '' : `; ${r.crashed.join('; ')}`}`]
  )
  if (unexpected.length > 0) {
    out.push(`unexpected answers (first ${unexpected.length}):`)
    for (const u of unexpected) out.push(`  ${u}`)
  }
  // the replicas' warnings and errors, by level and message
  const loud = new Map<string, number>()
  for (const l of r.replicas.flatMap((g) => g.logs)) {
    if (Number(l.level) < 40) continue
    const key = `${Number(l.level) >= 50 ? 'error' : 'warn'} ${String(l.msg).slice(0, 90)}`
    loud.set(key, (loud.get(key) ?? 0) + 1)
  }
  if (loud.size > 0) out.push('gateway warn/error log lines, both replicas:', ...[...loud].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([m, n]) => `  ${pad(n, 6)} ${m}`))
  out.push('criteria:')
  for (const [name, pass, detail] of criteria) out.push(`  ${pass ? 'PASS' : 'FAIL'}  ${name} (${detail})`)
  const passed = criteria.every(([, pass]) => pass)
  out.push(`soak ${passed ? 'PASSED' : 'FAILED'}`)
  console.log(out.join('\n'))
  return passed
}

// --- entry --------------------------------------------------------------------------------------

let passed = false
try {
  passed = await main()
} catch (err) {
  console.error(`soak: ${(err as Error).stack ?? String(err)}`)
} finally {
  await cleanup()
}
if (!interrupted) process.exit(passed ? 0 : 1)
