// admin.traceUrlTemplate: with tracing on, each decision's trace id in the console links to the
// template with that id — in the server-rendered row and in /api/decisions, which console.js
// builds its rows from. Without the template the id is shown, unlinked.
import t from 'tap'
import { request } from 'undici'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace'
import { startTracing } from '../../src/telemetry/tracing.ts'
import { parseConfig } from '../../src/config/load.ts'
import { buildGateway, type Gateway } from '../../src/gateway.ts'
import { startRecordingUpstream } from '../helpers/recording-upstream.ts'
import { POST_HEADERS, rawInitialize, readMessages } from '../helpers/raw-mcp.ts'

const TEMPLATE = 'https://grafana.example.com/explore?left=trace&traceId={traceId}'

const exporter = new InMemorySpanExporter()
const stopTracing = await startTracing({}, [new SimpleSpanProcessor({ exporter })])
if (stopTracing === undefined) throw new Error('startTracing with span processors started nothing')
const upstream = await startRecordingUpstream()

async function start (admin: string): Promise<{ gateway: Gateway, url: string, adminUrl: string }> {
  const gateway = buildGateway(parseConfig(`
publicUrl: http://127.0.0.1:9
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0${admin} }
servers:
  s:
    auth: none
    upstream: { url: ${upstream.url} }
    tools:
      - { allow: [echo], id: read-tools }
      - { deny: [secret], id: no-secrets }
`, { source: '<test>', env: {} }), { logger: false })
  return { gateway, ...await gateway.listen() }
}

const linked = await start(`, traceUrlTemplate: "${TEMPLATE}"`)
const plain = await start('')
t.teardown(async () => {
  await linked.gateway.close()
  await plain.gateway.close()
  await upstream.close()
  await stopTracing()
})

/** A denied tools/call: one row in the console's decisions. */
async function deny (url: string): Promise<void> {
  const session = await rawInitialize(`${url}/mcp/s`)
  const res = await request(`${url}/mcp/s`, {
    method: 'POST',
    headers: { ...POST_HEADERS, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'secret', arguments: {} } }),
  })
  const [message] = await readMessages(res)
  if (message?.error?.code !== -32602) throw new Error(`expected a denial, got ${JSON.stringify(message)}`)
}

interface Row { name: string, ruleId: string, traceId?: string, traceUrl?: string }
const decisions = async (adminUrl: string): Promise<Row[]> =>
  ((await (await request(`${adminUrl}/api/decisions`)).body.json()) as { decisions: Row[] }).decisions

t.test('a decision row links its trace id to the template', async (t) => {
  await deny(linked.url)
  const [row] = await decisions(linked.adminUrl)
  t.match(row, { name: 'secret', ruleId: 'no-secrets' })
  const traceId = row?.traceId ?? ''
  t.match(traceId, /^[0-9a-f]{32}$/, 'the decision has its trace id')
  const href = `https://grafana.example.com/explore?left=trace&amp;traceId=${traceId}`
  t.equal(row?.traceUrl, TEMPLATE.replace('{traceId}', traceId), '/api/decisions: the template with the id')
  const page = await (await request(`${linked.adminUrl}/decisions`)).body.text()
  t.match(page, `<a href="${href}"><code>${traceId}</code></a>`, 'the page: a link, its & escaped')
})

t.test('without the template the trace id is shown, not linked', async (t) => {
  await deny(plain.url)
  const [row] = await decisions(plain.adminUrl)
  const traceId = row?.traceId ?? ''
  t.match(traceId, /^[0-9a-f]{32}$/)
  t.equal(row?.traceUrl, undefined)
  const page = await (await request(`${plain.adminUrl}/decisions`)).body.text()
  t.match(page, `<td><code>${traceId}</code></td>`)
  t.notMatch(page, '<a href="https://grafana')
})
