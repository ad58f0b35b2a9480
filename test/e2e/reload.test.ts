// Config reload (design.md §4: "SIGHUP … reloads: the new config is validated and swapped
// atomically; an invalid one is rejected and the old one stays; open streams are not dropped").
// In process: gateway.reload() swaps tool rules, mode and upstreams for the next request and
// refuses — changing nothing — what needs a restart; an SSE stream opened before a reload keeps
// delivering to its end, also when the reload replaces its upstream; N SDK clients calling in a
// loop through 20 reloads see no failed request. As a real process: `portcullis start` reloads
// its file on SIGHUP, keeps the old config (logging the problem paths) when the file is invalid,
// and exits 0 on SIGTERM — also when started by an older node through the bin/ re-exec wrapper.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway, type StartedGateway } from '../helpers/gateway.ts'
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts'
import { withFreePorts } from '../helpers/ports.ts'
import { POST_HEADERS, dropClientConnections, send, toolsCall } from '../helpers/mcp-http.ts'
import { rawInitialize, sseEvents, type RpcMessage } from '../helpers/raw-mcp.ts'
import { metricSum, scrape } from '../helpers/policy-metrics.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))

/** what helpers/gateway.ts appends to every config: a reloaded config must carry it unchanged */
const LISTEN = `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
`

interface ServerSpec {
  readonly upstream: RecordingUpstream
  readonly tools: string
  readonly mode?: 'enforce' | 'shadow'
  readonly headers?: Record<string, string>
}

function configYaml (servers: Record<string, ServerSpec>, extra = ''): string {
  return `publicUrl: http://127.0.0.1:1
${extra}
servers:
${Object.entries(servers).map(([name, s]) => `  ${name}:
    upstream: { url: ${s.upstream.url}${s.headers === undefined ? '' : `, headers: ${JSON.stringify(s.headers)}`} }
    auth: none
    mode: ${s.mode ?? 'enforce'}
    tools: ${s.tools}`).join('\n')}
`
}

const reloadTo = async (gw: StartedGateway, yaml: string): Promise<{ applied: boolean, restartNeeded: string[] }> =>
  await gw.gateway.reload(parseConfig(`${yaml}${LISTEN}`, { source: '<reload>', env: {} }))

const rpcOf = (result: { messages: unknown[] }): RpcMessage => result.messages[0] as RpcMessage
const names = (message: RpcMessage): string[] => ((message.result as { tools?: Array<{ name: string }> } | undefined)?.tools ?? []).map((tool) => tool.name)

t.teardown(dropClientConnections)

// ---------------------------------------------------------------------------------------------
// (a) gateway.reload(): the next request follows the new config; restart-only changes change nothing

t.test('reload swaps tool rules, mode and upstreams for the next request', async (t) => {
  const upstream = await startRecordingUpstream({ mode: 'stateless', json: true })
  const second = await startRecordingUpstream({ mode: 'stateless', json: true })
  const v1 = configYaml({ demo: { upstream, tools: '[{ allow: [echo] }]' } })
  const gw = await startGateway(v1)
  t.teardown(async () => {
    await dropClientConnections()
    await gw.close()
    await upstream.close()
    await second.close()
  })
  const url = gw.mcpUrl('demo')
  const listTools = async (): Promise<string[]> => names(rpcOf(await send(url, { body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' })))
  const callTool = async (name: string): Promise<RpcMessage> => rpcOf(await send(url, { body: toolsCall(2, name, name === 'add' ? { a: 1, b: 2 } : { message: 'm' }) }))

  t.same(await listTools(), ['echo'], 'v1: only echo listed')
  t.same(await callTool('add'), { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Unknown tool: add' } }, 'v1: add denied')
  t.notOk(upstream.calls.includes('add'))

  const v2 = configYaml({ demo: { upstream, tools: '[{ allow: [echo, add] }, { deny: [echo], id: no-echo }]' } })
  t.same(await reloadTo(gw, v2), { applied: true, restartNeeded: [] }, 'v2 applied')
  t.same(await listTools(), ['add'], 'v2: the next tools/list follows the new rules')
  t.match(await callTool('add'), { id: 2, result: { content: [{ text: '3' }] } }, 'v2: add allowed')
  t.same(await callTool('echo'), { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Unknown tool: echo' } }, 'v2: echo denied')
  t.same(upstream.calls, ['add'], 'the upstream ran add only')
  t.match(gw.logs.filter((l) => l['event.name'] === 'mcp.tool_call').at(-1), { 'gen_ai.tool.name': 'echo', 'portcullis.policy.rule_id': 'no-echo' },
    'the audit names the new rule')

  // restart-only changes: refused whole, naming each path; the rules in the same file are not applied either
  const v3Rules = '[{ allow: [echo] }]'
  for (const [what, yaml, paths] of [
    ['authorization', configYaml({ demo: { upstream, tools: v3Rules } }, 'authorization: { accessTokenTtlSeconds: 120 }'), ['authorization']],
    ['an added server', configYaml({ demo: { upstream, tools: v3Rules }, extra: { upstream, tools: v3Rules } }), ['servers.extra (added)']],
    // the issuer defaults to publicUrl: moving publicUrl moves authorization.issuer too
    ['publicUrl and limits', configYaml({ demo: { upstream, tools: v3Rules } }).replace('http://127.0.0.1:1', 'http://127.0.0.1:2').concat('limits: { maxBodyBytes: 1000 }\n'), ['publicUrl', 'limits', 'authorization']],
  ] as const) {
    t.same(await reloadTo(gw, yaml), { applied: false, restartNeeded: paths }, `${what}: not applied, needs a restart`)
    t.same(await listTools(), ['add'], `${what}: the running rules stay`)
    t.match(await callTool('add'), { result: {} }, `${what}: add still allowed`)
  }
  const extra = await send(gw.mcpUrl('extra'), { body: toolsCall(1, 'echo', { message: 'x' }) })
  t.equal(extra.status, 404, 'the server of a refused reload does not exist')
  t.same(upstream.calls, ['add', 'add', 'add', 'add'])

  // mode: shadow lets the denied call through; back to enforce blocks it again
  t.same(await reloadTo(gw, configYaml({ demo: { upstream, tools: '[{ allow: [echo, add] }, { deny: [echo], id: no-echo }]', mode: 'shadow' } })),
    { applied: true, restartNeeded: [] })
  t.match(await callTool('echo'), { result: { content: [{ text: 'm' }] } }, 'shadow: echo reaches the upstream')
  t.match(gw.logs.filter((l) => l['event.name'] === 'mcp.tool_call').at(-1), { 'portcullis.policy.decision': 'would_deny', 'portcullis.policy.rule_id': 'no-echo' })
  t.same(await reloadTo(gw, v2), { applied: true, restartNeeded: [] })
  t.match(await callTool('echo'), { error: { code: -32602 } }, 'enforce again: echo denied')

  // another upstream for the same server
  t.same(await reloadTo(gw, configYaml({ demo: { upstream: second, tools: '[{ allow: [echo, add] }]' } })), { applied: true, restartNeeded: [] })
  const before = upstream.requests.length
  t.match(await callTool('echo'), { result: { content: [{ text: 'm' }] } })
  t.same(second.calls, ['echo'], 'the next call goes to the new upstream')
  t.equal(upstream.requests.length, before, 'and not to the old one')
})

// ---------------------------------------------------------------------------------------------
// (b) an SSE stream opened before a reload is delivered to its end

t.test('an SSE stream opened before a reload keeps delivering and completes after it', async (t) => {
  const upstream = await startRecordingUpstream()
  const allowSlow = '[{ allow: [slow, echo] }]'
  const gw = await startGateway(configYaml({ s: { upstream, tools: allowSlow } }))
  t.teardown(async () => {
    await dropClientConnections()
    await gw.close()
    await upstream.close()
  })
  const url = gw.mcpUrl('s')
  const session = await rawInitialize(url)
  const headers = { ...POST_HEADERS, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': session.protocolVersion }

  const streams = await Promise.all([1, 2].map(async (id) => {
    const res = await request(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'slow', arguments: { steps: 5, ms: 150 }, _meta: { progressToken: `p${id}` } } }),
      signal: AbortSignal.timeout(10_000),
    })
    t.match(res.headers['content-type'], /^text\/event-stream/, `stream ${id} is SSE`)
    return { id, events: sseEvents(res), res }
  }))
  const next = async (stream: typeof streams[number]): Promise<RpcMessage | undefined> => {
    for (;;) {
      const { value, done } = await stream.events.next()
      if (done === true) return undefined
      if (value.message !== undefined) return value.message
    }
  }
  for (const stream of streams) t.match(await next(stream), { method: 'notifications/progress', params: { progress: 1 } }, `stream ${stream.id}: first progress before the reload`)

  // reload 1: rules only (slow now denied); reload 2: new upstream headers, so the upstream is replaced
  t.same(await reloadTo(gw, configYaml({ s: { upstream, tools: '[{ allow: [echo] }]' } })), { applied: true, restartNeeded: [] })
  t.same(await reloadTo(gw, configYaml({ s: { upstream, tools: '[{ allow: [echo] }]', headers: { 'x-config-generation': '2' } } })), { applied: true, restartNeeded: [] })

  for (const stream of streams) {
    const rest: RpcMessage[] = []
    for (let m = await next(stream); m !== undefined; m = await next(stream)) {
      rest.push(m)
      if (m.id === stream.id) break
    }
    t.same(rest.filter((m) => m.method === 'notifications/progress').map((m) => (m.params as { progress: number }).progress), [2, 3, 4, 5],
      `stream ${stream.id}: every later progress event arrives`)
    t.match(rest.at(-1), { id: stream.id, result: { content: [{ text: 'done after 5 steps' }] } }, `stream ${stream.id}: the result arrives after the reloads`)
    stream.res.body.destroy()
  }

  const denied = await send(url, { headers, body: toolsCall(3, 'slow', { steps: 1, ms: 1 }) })
  t.same(denied.messages, [{ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Unknown tool: slow' } }], 'a new call follows the new rules')
  const echo = await send(url, { headers, body: toolsCall(4, 'echo', { message: 'same session' }) })
  t.match(echo.messages, [{ id: 4, result: { content: [{ text: 'same session' }] } }], 'the session lives on through the replaced upstream')
  t.equal(upstream.requests.at(-1)?.headers['x-config-generation'], '2', 'sent through the new upstream config')
})

// ---------------------------------------------------------------------------------------------
// (c) reloads under load drop no request

t.test('20 reloads under load from 8 SDK clients: no request fails', async (t) => {
  const upstream = await startRecordingUpstream()
  const rules = ['[{ allow: [echo, add] }]', '[{ allow: [echo] }, { deny: [add], id: no-add }]']
  const generation = (n: number): string => configYaml({ load: { upstream, tools: rules[n % 2] as string, headers: { 'x-config-generation': String(n) } } })
  const gw = await startGateway(generation(0))
  const clients: Client[] = []
  t.teardown(async () => {
    for (const client of clients) await client.close().catch(() => {})
    await dropClientConnections()
    await gw.close()
    await upstream.close()
  })
  for (let i = 0; i < 8; i++) {
    const client = new Client({ name: `load-${i}`, version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl('load'))))
    clients.push(client)
  }

  let stop = false
  const failures: string[] = []
  let ok = 0
  let inFlight = 0
  const loops = clients.map(async (client, i) => {
    for (let n = 0; !stop; n++) {
      inFlight++
      try {
        if (n % 5 === 4) {
          const { tools } = await client.listTools()
          if (!tools.some((tool) => tool.name === 'echo') || tools.some((tool) => tool.name === 'secret')) failures.push(`client ${i}: list ${JSON.stringify(tools.map((x) => x.name))}`)
        } else {
          const result = await client.callTool({ name: 'echo', arguments: { message: `${i}-${n}` } })
          const text = (result.content as Array<{ text?: string }>)[0]?.text
          if (text !== `${i}-${n}`) failures.push(`client ${i}: echo answered ${JSON.stringify(result)}`)
        }
        ok++
      } catch (err) {
        failures.push(`client ${i}: ${String(err)}`)
      } finally {
        inFlight--
      }
    }
  })

  // each reload comes after 8 more requests have completed (so every config generation carries
  // traffic, however slow the machine), while the clients keep requests in flight
  const outcomes: Array<{ applied: boolean, restartNeeded: string[] }> = []
  const inFlightAtReload: number[] = []
  const completedBefore = async (target: number): Promise<void> => {
    for (const until = Date.now() + 5_000; ok < target && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  for (let n = 1; n <= 20; n++) {
    await completedBefore(ok + 8)
    inFlightAtReload.push(inFlight)
    outcomes.push(await reloadTo(gw, generation(n)))
  }
  await completedBefore(ok + 8)
  stop = true
  await Promise.all(loops)

  t.ok(outcomes.every((o) => o.applied), 'all 20 reloads applied')
  t.ok(inFlightAtReload.every((n) => n > 0), `every reload happened with requests in flight (${inFlightAtReload.join(' ')})`)
  t.same(failures, [], 'no failed request')
  t.ok(ok >= 8 * 21, `${ok} requests succeeded across the reloads`)
  const generations = new Set(upstream.requests.map((r) => r.headers['x-config-generation']))
  t.equal(generations.size, 21, 'requests went out under each of the 21 config generations')
  const samples = await scrape(gw.adminUrl)
  t.equal(metricSum(samples, 'portcullis_tool_calls_total', { server: 'load', outcome: 'upstream_error' }), 0, 'no upstream error counted')
  t.equal(metricSum(samples, 'portcullis_tool_calls_total', { server: 'load', outcome: 'cancelled' }), 0, 'no call cancelled')

  // the last generation's rules are in force
  const add = await clients[0]?.callTool({ name: 'add', arguments: { a: 2, b: 2 } }).then(() => 'allowed', (err: unknown) => String(err))
  t.equal(add, 'allowed', 'generation 20 (even): add is allowed')
})

// ---------------------------------------------------------------------------------------------
// (d) a real process: SIGHUP reloads the file; an invalid file is refused and logged; SIGTERM exits 0

/** `portcullis start --config <file>` as a child process, its stdout JSON lines collected */
interface Portcullis {
  readonly child: ReturnType<typeof spawn>
  readonly lines: Array<Record<string, unknown>>
  readonly exited: Promise<number | null>
  readonly port: number
  /** the config file, rewritten by write() */
  write (tools: string, extra?: string): void
  /** the first line logged with this msg after index `from`; waits up to `ms` */
  logged (msg: string, from?: number, ms?: number): Promise<Record<string, unknown>>
  callTool (name: string): Promise<RpcMessage>
}

/** publicUrl names the gateway's own port: on one taken meanwhile the process exits, and is started again. */
async function startPortcullis (t: Test, nodePath: string, upstream: RecordingUpstream): Promise<Portcullis> {
  return await withFreePorts(1, async (port) => await startPortcullisOn(t, nodePath, upstream, port))
}

async function startPortcullisOn (t: Test, nodePath: string, upstream: RecordingUpstream, port: number): Promise<Portcullis> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-reload-'))
  const file = join(dir, 'portcullis.yaml')
  const write = (tools: string, extra = ''): void => writeFileSync(file, `publicUrl: http://127.0.0.1:${port}
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: 0 }
${extra}
servers:
  demo:
    upstream: { url: ${upstream.url} }
    auth: none
    tools: ${tools}
`)
  write('[{ allow: [echo] }]')
  // As an operator starts it: `env` execs node in its own pid without the NODE_OPTIONS the test
  // runner injects into child processes (its hooks would catch the signals sent to the child).
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', nodePath, join(root, 'bin/portcullis.js'), 'start', '--config', file], {
    cwd: root,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const closed = new Promise((resolve) => child.once('close', resolve))
  const lines: Array<Record<string, unknown>> = []
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    // the process that logged (the wrapper may have re-executed another node): never leave it running
    const pid = lines.find((l) => typeof l.pid === 'number')?.pid as number | undefined
    if (pid !== undefined && pid !== child.pid) try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    rmSync(dir, { recursive: true, force: true })
  })
  let stderr = ''
  let pending = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (pending + chunk.toString('utf8')).split('\n')
    pending = parts.pop() ?? ''
    for (const line of parts) {
      try { lines.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not a JSON line */ }
    }
  })
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const logged = async (msg: string, from = 0, ms = 15_000): Promise<Record<string, unknown>> => {
    for (const until = Date.now() + ms; Date.now() < until;) {
      const line = lines.slice(from).find((l) => l.msg === msg)
      if (line !== undefined) return line
      if (child.exitCode !== null) throw new Error(`portcullis exited ${child.exitCode}: ${stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error(`no log line "${msg}" (stderr: ${stderr})`)
  }
  const url = `http://127.0.0.1:${port}/mcp/demo`
  const callTool = async (name: string): Promise<RpcMessage> =>
    rpcOf(await send(url, { body: toolsCall(1, name, name === 'add' ? { a: 1, b: 2 } : { message: 'm' }) }))
  try {
    await logged('portcullis listening')
  } catch (err) {
    // with all of its stderr: the caller retries on EADDRINUSE
    if (child.exitCode !== null) await closed
    throw new Error(`${(err as Error).message}\n${stderr}`)
  }
  return { child, lines, exited, port, write, logged, callTool }
}

t.test('portcullis start: SIGHUP reloads the config file, an invalid one is refused, SIGTERM exits 0', async (t) => {
  const upstream = await startRecordingUpstream({ mode: 'stateless', json: true })
  t.teardown(async () => {
    await dropClientConnections()
    await upstream.close()
  })
  const { child, lines, exited, write, logged, callTool } = await startPortcullis(t, process.execPath, upstream)

  t.same(await callTool('add'), { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'Unknown tool: add' } }, 'first config: add denied')
  t.match(await callTool('echo'), { result: { content: [{ text: 'm' }] } }, 'first config: echo allowed')

  let mark = lines.length
  write('[{ allow: [echo, add] }]')
  child.kill('SIGHUP')
  t.match(await logged('config reloaded', mark), { servers: ['demo'] }, 'SIGHUP: the file is reloaded')
  t.match(await callTool('add'), { result: { content: [{ text: '3' }] } }, 'the new rules apply: add allowed')
  t.same(upstream.calls, ['echo', 'add'])

  mark = lines.length
  write('[{ allow: [echo], frobnicate: 1 }, { deny: 42 }]\n    mode: loud')
  child.kill('SIGHUP')
  const refused = await logged('config not reloaded: the file is invalid', mark)
  const problems = (refused.problems ?? []) as Array<{ path: string, message: string }>
  t.same(problems.map((p) => p.path).sort(), ['servers.demo.mode', 'servers.demo.tools[0].frobnicate', 'servers.demo.tools[1].deny'], 'the log names every problem path')
  t.ok(problems.every((p) => typeof p.message === 'string' && p.message !== ''), 'each with its message')
  t.match(await callTool('add'), { result: { content: [{ text: '3' }] } }, 'the old config stays: add still allowed')
  t.match(await callTool('secret'), { error: { code: -32602 } }, 'and secret still denied')

  mark = lines.length
  write('[{ allow: [echo] }]', 'limits: { maxBodyBytes: 1000 }')
  child.kill('SIGHUP')
  t.match(await logged('config not reloaded: these changes need a restart', mark), { restartNeeded: ['limits'] }, 'a restart-only change is refused, naming it')
  t.match(await callTool('add'), { result: {} }, 'the old config stays')

  mark = lines.length
  write('[{ allow: [echo] }]')
  child.kill('SIGHUP')
  await logged('config reloaded', mark)
  t.match(await callTool('add'), { error: { code: -32602 } }, 'a valid file after an invalid one is applied')

  await dropClientConnections()
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: exit code 0')
  t.ok(lines.some((l) => l.msg === 'draining'), 'draining was logged')
  t.equal(upstream.calls.filter((c) => c === 'add').length, 3, 'exactly the allowed add calls reached the upstream')
})

// bin/portcullis.js re-executes itself with the project's node@24 when started by a Node without
// type stripping: the signals an operator sends to the pid they started must reach the gateway.
const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((path) =>
  spawnSync(path, ['-p', 'String(process.features.typescript ?? false)'], { encoding: 'utf8' }).stdout?.trim() === 'false')
t.test('through the re-exec wrapper (an older node on PATH): SIGHUP and SIGTERM reach the gateway', {
  skip: oldNode === undefined ? 'no Node without type stripping installed' : false,
}, async (t) => {
  const upstream = await startRecordingUpstream({ mode: 'stateless', json: true })
  t.teardown(async () => {
    await dropClientConnections()
    await upstream.close()
  })
  const { child, lines, exited, port, write, logged, callTool } = await startPortcullis(t, oldNode as string, upstream)
  const gatewayPid = lines.find((l) => l.msg === 'portcullis listening')?.pid
  t.not(gatewayPid, child.pid, 'the gateway runs in a re-executed process')
  t.match(await callTool('add'), { error: { code: -32602 } }, 'first config: add denied')

  const mark = lines.length
  write('[{ allow: [echo, add] }]')
  child.kill('SIGHUP')
  const reloaded = await logged('config reloaded', mark, 3_000).then(() => true, () => false)
  t.ok(reloaded, 'SIGHUP to the started pid reloads the config')
  t.equal(child.exitCode === null && child.signalCode === null ? 'running' : `ended (${String(child.signalCode ?? child.exitCode)})`, 'running', 'the started pid is still running after SIGHUP')

  child.kill('SIGTERM')
  const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 5_000))])
  t.not(code, 'timeout', 'the started pid exits on SIGTERM')
  await dropClientConnections()
  const stillServing = await send(`http://127.0.0.1:${port}/mcp/demo`, { body: toolsCall(1, 'echo', { message: 'm' }), timeoutMs: 2_000 })
    .then(() => true, () => false)
  t.notOk(stillServing, 'no gateway is left serving after SIGTERM')
})
