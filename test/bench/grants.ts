/**
 * Load generator for the token endpoint (features.ts, "token endpoint throughput"), run as its
 * own process so it can be pinned with the other load (CPU 0):
 *   node test/bench/grants.ts URL BASIC_AUTH ID_JAG_FILE DURATION_S CONCURRENCY
 * Reads the pre-minted ID-JAGs (one per line, each used once), builds every request body before
 * the clock starts, then keeps CONCURRENCY jwt-bearer grants in flight on an undici Pool of
 * CONCURRENCY connections until DURATION_S has passed or the ID-JAGs run out. Every response is
 * read; a 200 must carry a JWT access_token. Prints one line:
 *   BENCH_GRANTS {"sent":…,"ok":…,"statuses":{…},"elapsedMs":…,"rps":…,"p50":…,"p90":…,"p99":…,"max":…,"ranOut":…,"firstError":…}
 * (latencies in ms; rps counts 200s with a token only).
 */
import { readFileSync } from 'node:fs'
import { Pool } from 'undici'

const [url, auth, file, durationArg, concurrencyArg] = process.argv.slice(2)
if (url === undefined || auth === undefined || file === undefined || durationArg === undefined || concurrencyArg === undefined) {
  console.error('usage: node test/bench/grants.ts URL BASIC_AUTH ID_JAG_FILE DURATION_S CONCURRENCY')
  process.exit(2)
}
const durationMs = Number(durationArg) * 1000
const concurrency = Number(concurrencyArg)
const origin = new URL(url)
const path = `${origin.pathname.replace(/\/$/, '')}/oauth/token`
const bodies = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')
  .map((assertion) => new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString())
const headers = { 'content-type': 'application/x-www-form-urlencoded', authorization: auth }
const pool = new Pool(origin.origin, { connections: concurrency, pipelining: 1 })

const statuses: Record<string, number> = {}
const latencies: number[] = []
let next = 0
let ok = 0
let firstError: string | undefined
const t0 = performance.now()
const deadline = t0 + durationMs

async function worker (): Promise<void> {
  while (next < bodies.length && performance.now() < deadline) {
    const body = bodies[next++]!
    const start = performance.now()
    let key: string
    try {
      const res = await pool.request({ path, method: 'POST', headers, body })
      const text = await res.body.text()
      key = String(res.statusCode)
      if (res.statusCode === 200) {
        const token = (JSON.parse(text) as { access_token?: unknown }).access_token
        if (typeof token === 'string' && token.split('.').length === 3) ok++
        else { key = '200-without-token'; firstError ??= text.slice(0, 300) }
      } else {
        firstError ??= `${res.statusCode} ${text.slice(0, 300)}`
      }
    } catch (err) {
      key = `error ${(err as Error).name}`
      firstError ??= (err as Error).message
    }
    latencies.push(performance.now() - start)
    statuses[key] = (statuses[key] ?? 0) + 1
  }
}

await Promise.all(Array.from({ length: concurrency }, () => worker()))
const elapsedMs = performance.now() - t0
await pool.close()
latencies.sort((a, b) => a - b)
const pct = (p: number): number => latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!
const round = (v: number): number => Math.round(v * 1000) / 1000
process.stdout.write(`BENCH_GRANTS ${JSON.stringify({
  sent: latencies.length,
  ok,
  statuses,
  elapsedMs: round(elapsedMs),
  rps: round(ok / (elapsedMs / 1000)),
  p50: round(pct(50)),
  p90: round(pct(90)),
  p99: round(pct(99)),
  max: round(latencies.at(-1) ?? 0),
  ranOut: next >= bodies.length && elapsedMs < durationMs,
  available: bodies.length,
  firstError,
})}\n`)
