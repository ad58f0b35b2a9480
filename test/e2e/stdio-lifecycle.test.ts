// stdio upstreams: one child process per client session, bounded in number, killed when the
// session ends (DELETE) or goes idle, its stderr in the gateway log.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { POST_HEADERS, rawInitialize, readMessages } from '../helpers/raw-mcp.ts'

const script = fileURLToPath(new URL('../fixtures/stdio-pid-server.ts', import.meta.url))
const gw = await startGateway(`
publicUrl: http://127.0.0.1:1
servers:
  pid:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(script)}], maxSessions: 2, idleTimeoutMs: 60000 }
    auth: none
    tools: [{ allow: ["*"] }]
  idle:
    upstream: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(script)}], idleTimeoutMs: 2000 }
    auth: none
    tools: [{ allow: ["*"] }]
`)
t.teardown(() => gw.close())

async function pidOf (url: string, session: { sessionId: string, protocolVersion: string }): Promise<number> {
  const res = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'pid', arguments: {} } }),
  })
  const [message] = await readMessages(res)
  return Number((message?.result as { content: Array<{ text: string }> }).content[0]?.text)
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function eventually (check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return check()
}

t.test('each session has its own process; maxSessions bounds them; DELETE kills the process', async (t) => {
  const url = gw.mcpUrl('pid')
  const a = await rawInitialize(url)
  const b = await rawInitialize(url)
  const pidA = await pidOf(url, a)
  const pidB = await pidOf(url, b)
  t.not(pidA, pidB, 'one process per session')
  t.ok(alive(pidA) && alive(pidB))

  const third = await request(url, {
    method: 'POST',
    headers: POST_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  })
  t.equal(third.statusCode, 503, 'a session over maxSessions is refused')
  t.equal(third.headers['retry-after'], '5')
  t.match(await third.body.json(), { jsonrpc: '2.0', id: 0, error: { code: -32603 } })

  const del = await request(url, { method: 'DELETE', headers: { 'mcp-session-id': a.sessionId, 'mcp-protocol-version': a.protocolVersion } })
  await del.body.dump()
  t.equal(del.statusCode, 200)
  t.ok(await eventually(() => !alive(pidA)), 'the deleted session\'s process is gone')
  t.ok(alive(pidB), 'the other session\'s process lives on')

  const after = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, 'mcp-session-id': a.sessionId, 'mcp-protocol-version': a.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
  })
  t.equal(after.statusCode, 404, 'the deleted session is gone')
  await after.body.dump()
  const c = await rawInitialize(url)
  t.ok(alive(await pidOf(url, c)), 'a freed slot takes a new session')
  t.ok(gw.logs.some((l) => l.msg === 'upstream stderr' && String(l.stderr).includes(`pid=${pidA}`)), 'the child\'s stderr is in the log')
})

t.test('an idle session is closed and its process killed', async (t) => {
  const url = gw.mcpUrl('idle')
  const s = await rawInitialize(url)
  const pid = await pidOf(url, s)
  t.ok(alive(pid))
  t.ok(await eventually(() => !alive(pid), 10_000), 'the idle session\'s process is killed')
  const res = await request(url, {
    method: 'POST',
    headers: { ...POST_HEADERS, 'mcp-session-id': s.sessionId, 'mcp-protocol-version': s.protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
  })
  t.equal(res.statusCode, 404, 'and the client is told to re-initialize')
  await res.body.dump()
})
