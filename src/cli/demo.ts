import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { parseConfig } from '../config/load.ts'
import { buildGateway } from '../gateway.ts'
import { DEFAULT_DEV_IDP_YAML, DEMO_CLIENT, buildDevIdp, parseDevIdpConfig } from '../dev-idp/index.ts'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { VERSION } from '../version.ts'
import type { CliIo } from './io.ts'
import { runCall } from './call.ts'
import { runToken } from './token.ts'

const require = createRequire(import.meta.url)

/**
 * Read-only first: eng reads, sales gets the basics, and nobody reaches the gateway's environment
 * or a tool that changes state, fetches a URL or asks the client to sample or elicit.
 */
const DEMO_TOOL_POLICY = `
      - id: no-env
        deny: [get-env]
      - id: no-side-effects
        deny: ["trigger-*", "toggle-*", gzip-file-as-resource, simulate-research-query]
      - id: read-tools
        allow: [echo, get-sum, get-tiny-image, get-annotated-message, get-structured-content, get-resource-links, get-resource-reference, get-roots-list]
        scopes: [tools.read]
        claims: { groups: [eng] }
      - id: sales-basics
        allow: [echo, get-sum, get-tiny-image]
        scopes: [tools.read]
        claims: { groups: [sales] }`

/**
 * `portcullis demo` (`npm start`): the dev IdP, a real MCP server (server-everything, Streamable
 * HTTP) and the gateway in front of it as its authorization server, all on 127.0.0.1, with a
 * read-only-first policy; then what alice and bob each see and may call, made on the spot, where
 * the console shows those decisions, the command to paste that does the same (ID token → ID-JAG →
 * access token, then a tool call), and how to
 * try the other path: a client without EMA logging in through the browser, federated to the IdP.
 */
export async function runDemo (_argv: string[], io: CliIo): Promise<number> {
  const gatewayPort = Number(io.env.PORTCULLIS_DEMO_PORT ?? 8080)
  const adminPort = Number(io.env.PORTCULLIS_DEMO_ADMIN_PORT ?? 9464)
  const idpPort = Number(io.env.PORTCULLIS_DEMO_IDP_PORT ?? 8081)
  const upstreamPort = Number(io.env.PORTCULLIS_DEMO_UPSTREAM_PORT ?? 8082)
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`
  const idpUrl = `http://127.0.0.1:${idpPort}`
  const level = io.env.PORTCULLIS_LOG_LEVEL ?? 'warn'

  // The gateway's own OIDC client at the dev IdP, for the browser login; its secret lives as long as the demo.
  const login = { clientId: 'portcullis-login', secret: randomBytes(24).toString('base64url') }
  const idp = await buildDevIdp(parseDevIdpConfig(DEFAULT_DEV_IDP_YAML
    .replaceAll('http://127.0.0.1:8081', idpUrl).replace('port: 8081', `port: ${idpPort}`)
    .replaceAll('http://127.0.0.1:8080', gatewayUrl)
    .replace('\nclients:\n', `\nclients:\n  - { clientId: ${login.clientId}, secret: "${login.secret}", redirectUris: ["${gatewayUrl}/oauth/callback"] }\n`),
  { source: '<demo idp>', env: {} }), { logger: { level } })
  await idp.listen()
  const upstream = await startEverything(upstreamPort)
  const config = parseConfig(`
publicUrl: ${gatewayUrl}
listen: { host: 127.0.0.1, port: ${gatewayPort} }
admin: { host: 127.0.0.1, port: ${adminPort} }
authorization:
  clients:
    - { clientId: ${DEMO_CLIENT.clientId}, auth: client_secret_basic, secret: ${DEMO_CLIENT.secret} }
  identityProviders:
    - issuer: ${idpUrl}
      algorithms: [ES256]
      claims: { groups: groups, email: email }
      login: { clientId: ${login.clientId}, clientSecret: "${login.secret}" }
  registration: { dynamic: true }
servers:
  everything:
    upstream: { url: http://127.0.0.1:${upstreamPort}/mcp }
    scopes: [tools.read, tools.write]
    tools:${DEMO_TOOL_POLICY}
`, { source: '<demo>', env: {} })
  const gateway = buildGateway(config, { logger: { level } })
  const { url, adminUrl } = await gateway.listen()
  const mcpUrl = `${url}/mcp/everything`
  const shown = await walkThrough(io, idpUrl, mcpUrl, `http://127.0.0.1:${upstreamPort}/mcp`)
  io.stdout.write([
    '',
    `  dev IdP (OpenID Provider)  ${idpUrl}        users alice/alice-demo (eng), bob/bob-demo (sales)`,
    `  upstream MCP server        http://127.0.0.1:${upstreamPort}/mcp   (server-everything, no authorization of its own)`,
    `  gateway                    ${mcpUrl}   (EMA: ID-JAG → access token)`,
    `  admin                      ${adminUrl}/metrics  /healthz  /readyz`,
    `  console                    ${adminUrl}/   (servers, recent decisions, policy playground)`,
    '',
    ...shown,
    `Console: ${adminUrl}/ — these decisions are there now (${adminUrl}/decisions)`,
    '',
    'Without a token the gateway answers 401 and points at its metadata:',
    `  node bin/portcullis.js call ${mcpUrl} echo '{"message":"hi"}'`,
    '',
    `Try it yourself: TOKEN=$(node bin/portcullis.js token --idp ${idpUrl} --user alice --server ${mcpUrl}) && node bin/portcullis.js call ${mcpUrl} echo '{"message":"hello through the gateway"}' --token "$TOKEN"`,
    '',
    `Or, for a client without EMA, the browser login: connect any MCP client with OAuth support (e.g. npx @modelcontextprotocol/inspector) to ${mcpUrl};`,
    '  it registers itself (DCR), the gateway sends the browser to the dev IdP\'s user picker (pick alice or bob: dev only, no password), and back with a code.',
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'))
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  await gateway.close()
  await idp.close()
  upstream.kill('SIGTERM')
  return 0
}

/**
 * The demo's own walk through the gateway, printed before anything else: a call without a token
 * (refused); alice's and bob's EMA flows (ID token → ID-JAG → access token, `portcullis token`);
 * the tools/list each of them gets, filtered by the policy; alice's call of a tool she may use and
 * of one nobody may (`portcullis call`), exactly as the printed commands do it.
 */
async function walkThrough (io: CliIo, idpUrl: string, mcpUrl: string, upstreamUrl: string): Promise<string[]> {
  const lines = ['Just now, through the gateway:']
  const refused = await call(io, mcpUrl, 'echo', '{"message":"hi"}', undefined)
  lines.push(`  without a token:  ${refused.ok ? 'ANSWERED (it should not have been)' : `refused — ${refused.text}`}`)
  const tokens: Record<string, string> = {}
  for (const [user, group] of [['alice', 'eng'], ['bob', 'sales']] as const) {
    const tokenRun = captureIo(io.env)
    const tokenExit = await runToken(['--idp', idpUrl, '--user', user, '--server', mcpUrl], tokenRun.io)
    const token = tokenRun.out().trim()
    if (tokenExit !== 0 || token === '') {
      lines.push(`  ${user}'s EMA flow failed: ${tokenRun.err().trim()}`, '')
      return lines
    }
    tokens[user] = token
    lines.push(`  ${user} (${group}), ID token → ID-JAG → access token (${token.length} characters, audience ${mcpUrl})`)
  }
  const all = await listTools(upstreamUrl, undefined)
  for (const user of ['alice', 'bob']) {
    const names = await listTools(mcpUrl, tokens[user])
    lines.push(`  tools/list as ${user}: ${names.length} of server-everything's ${all.length} — ${names.join(', ')}`)
  }
  const echo = await call(io, mcpUrl, 'echo', '{"message":"hello through the gateway"}', tokens.alice)
  lines.push(`  alice, tools/call echo:     ${echo.ok ? `"${echo.text}"` : `FAILED — ${echo.text}`}`)
  const env = await call(io, mcpUrl, 'get-env', '{}', tokens.alice)
  lines.push(`  alice, tools/call get-env:  ${env.ok ? 'ANSWERED (it should not have been)' : `denied — ${env.text}`}`, '')
  return lines
}

/** `portcullis call` as the printed command runs it: the result's text, or why it failed. */
async function call (io: CliIo, mcpUrl: string, tool: string, args: string, token: string | undefined): Promise<{ ok: boolean; text: string }> {
  const run = captureIo(io.env)
  const exit = await runCall([mcpUrl, tool, args, ...(token === undefined ? [] : ['--token', token])], run.io)
  if (exit !== 0) {
    const err = run.err().trim()
    // the JSON-RPC error's message, or the 401's OAuth message, without the SDK's prefixes
    const why = /"message":"([^"]*)"/.exec(err)?.[1] ?? /MCP error -?\d+: (.*)/.exec(err)?.[1] ?? err.split('\n')[0] ?? ''
    return { ok: false, text: why }
  }
  try {
    const result = JSON.parse(run.out()) as { content?: Array<{ type?: string; text?: string }> }
    return { ok: true, text: result.content?.find((c) => c.type === 'text')?.text ?? run.out().trim() }
  } catch {
    return { ok: true, text: run.out().trim() }
  }
}

/** The tool names an MCP endpoint lists (to this token), with the official SDK client. */
async function listTools (url: string, token: string | undefined): Promise<string[]> {
  const transport = new StreamableHTTPClientTransport(new URL(url), token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  const client = new Client({ name: 'portcullis-demo', version: VERSION })
  try {
    await client.connect(transport)
    return (await client.listTools()).tools.map((t) => t.name)
  } finally {
    await client.close().catch(() => {})
  }
}

function captureIo (env: CliIo['env']): { io: CliIo; out: () => string; err: () => string } {
  const out: string[] = []
  const err: string[] = []
  const sink = (into: string[]): NodeJS.WritableStream => new Writable({ write (chunk: Buffer, _enc, done) { into.push(chunk.toString()); done() } })
  return { io: { stdout: sink(out), stderr: sink(err), env }, out: () => out.join(''), err: () => err.join('') }
}

async function startEverything (port: number): Promise<ChildProcess> {
  const entry = require.resolve('@modelcontextprotocol/server-everything/dist/index.js')
  const child = spawn(process.execPath, [entry, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const ready = new Promise<void>((resolve, reject) => {
    const check = setInterval(() => { if (stderr.includes('listening on port')) { clearInterval(check); resolve() } }, 50)
    child.once('exit', (code) => { clearInterval(check); reject(new Error(`server-everything exited (${code}): ${stderr.slice(-500)}`)) })
  })
  await Promise.race([ready, once(child, 'error').then(([err]) => { throw err })])
  return child
}
