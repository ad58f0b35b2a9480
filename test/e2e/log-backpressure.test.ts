// A reader of the gateway's log that falls behind (a container runtime's pipe, a log agent) must
// not hold up requests: the real gateway logs into a FIFO whose write end is non-blocking, as
// libuv makes stdout, and whose reader (this test) stops reading. Requests keep being answered;
// past the buffer's bound lines are dropped and counted in portcullis_log_lines_dropped_total;
// once the reader catches up a warn line says how many, and every line that did arrive is whole.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway } from '../../src/gateway.ts'
import { LogDestination } from '../../src/telemetry/log-destination.ts'
import { metricSum, scrape } from '../helpers/policy-metrics.ts'
import { slowPipe } from '../helpers/slow-pipe.ts'

const dir = mkdtempSync(join(tmpdir(), 'log-backpressure-'))
const pipe = slowPipe(dir)
/** Take what the pipe holds now. */
const drain = (): void => { pipe.read() }

const MAX_PENDING = 16 * 1024
const destination = new LogDestination({ fd: pipe.writer, minLength: 4096, periodicFlush: 50, maxPendingBytes: MAX_PENDING })
const config = parseConfig(`
publicUrl: http://127.0.0.1:1
servers:
  tracker:
    upstream: { url: "http://127.0.0.1:1/mcp" }
    auth: none
    tools: [{ allow: ["*"] }]
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
`, { source: '<test>', env: {} })
const gateway = buildGateway(config, { logDestination: destination })
const { url, adminUrl } = await gateway.listen()
t.teardown(async () => {
  await gateway.close()
  destination.end()
  pipe.close()
  rmSync(dir, { recursive: true, force: true })
})

const dropped = async (): Promise<number> => metricSum(await scrape(adminUrl), 'portcullis_log_lines_dropped_total')

/** A request the gateway refuses before any upstream (no Accept: 406), with an audit line. */
async function refused (): Promise<number> {
  const res = await fetch(`${url}/mcp/tracker`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    signal: AbortSignal.timeout(5_000),
  })
  await res.arrayBuffer()
  return res.status
}

t.test('with nobody reading the log, requests are still answered; the lines past the bound are dropped and counted', async (t) => {
  t.equal(await dropped(), 0, 'nothing dropped at the start')
  drain() // the startup lines
  const statuses = new Set<number>()
  // ~200 KiB of audit lines into 64 KiB of pipe and 16 KiB of buffer
  for (let i = 0; i < 600; i++) statuses.add(await refused())
  t.same([...statuses], [406], 'all 600 requests answered (406, no Accept), none held up by the log')
  const count = await dropped()
  t.ok(count > 100, `portcullis_log_lines_dropped_total counts the dropped lines (${count})`)
})

t.test('once the reader catches up, the lines flow again and a warn line says how many were dropped', async (t) => {
  const count = await dropped()
  for (let i = 0; i < 50; i++) {
    drain()
    await refused()
    await sleep(60) // the periodic flush
  }
  drain()
  const lines = pipe.read().toString('utf8').split('\n')
  t.equal(lines.pop(), '', 'the log ends with a whole line')
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.pass(`every one of the ${parsed.length} lines that arrived is whole JSON`)
  const warn = parsed.find((line) => typeof line.msg === 'string' && line.msg.startsWith('log lines dropped'))
  t.equal(warn?.level, 40, 'a warn line')
  t.equal(warn?.dropped, count, 'with the number the metric counts')
  t.equal(await dropped(), count, 'nothing more dropped once the reader keeps up')
  const audits = parsed.filter((line) => line['log.type'] === 'audit')
  t.ok(audits.slice(-50).every((line) => line['http.response.status_code'] === 406), 'the requests after the reader caught up all have their audit line')
})
