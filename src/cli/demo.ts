import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { parseConfig } from '../config/load.ts'
import { buildGateway } from '../gateway.ts'
import { DEFAULT_DEV_IDP_YAML, DEMO_CLIENT, buildDevIdp, parseDevIdpConfig } from '../dev-idp/index.ts'
import type { CliIo } from './io.ts'
import { runCall } from './call.ts'
import { runToken } from './token.ts'

const require = createRequire(import.meta.url)

/**
 * `portcullis demo` (`npm start`): the dev IdP, a real MCP server (server-everything, Streamable
 * HTTP) and the gateway in front of it as its authorization server, all on 127.0.0.1; then an
 * authorized tool call made on the spot (and a refused one), the command to paste that does the
 * same (ID token → ID-JAG → access token, then a tool call), and how to
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
    tools:
      - allow: ["*"]
`, { source: '<demo>', env: {} })
  const gateway = buildGateway(config, { logger: { level } })
  const { url, adminUrl } = await gateway.listen()
  const mcpUrl = `${url}/mcp/everything`
  const shown = await authorizedCall(io, idpUrl, mcpUrl)
  io.stdout.write([
    '',
    `  dev IdP (OpenID Provider)  ${idpUrl}        users alice/alice-demo (eng), bob/bob-demo (sales)`,
    `  upstream MCP server        http://127.0.0.1:${upstreamPort}/mcp   (server-everything, no authorization of its own)`,
    `  gateway                    ${mcpUrl}   (EMA: ID-JAG → access token)`,
    `  admin                      ${adminUrl}/metrics  /healthz  /readyz`,
    `  console                    ${adminUrl}/   (servers, recent decisions, policy playground)`,
    '',
    ...shown,
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
 * (refused), then alice's EMA flow (ID token → ID-JAG → access token, `portcullis token`) and a
 * tools/call with the token (`portcullis call`), exactly as the printed commands do it.
 */
async function authorizedCall (io: CliIo, idpUrl: string, mcpUrl: string): Promise<string[]> {
  const lines = ['Just now, through the gateway:']
  const refused = captureIo(io.env)
  const denied = await runCall([mcpUrl, 'echo', '{"message":"hi"}'], refused.io)
  const why = /"message":"([^"]*)"/.exec(refused.err())?.[1] ?? refused.err().trim().split('\n')[0] ?? ''
  lines.push(`  without a token:  ${denied === 0 ? 'ANSWERED (it should not have been)' : `refused — ${why}`}`)
  const tokenRun = captureIo(io.env)
  const tokenExit = await runToken(['--idp', idpUrl, '--user', 'alice', '--server', mcpUrl], tokenRun.io)
  const token = tokenRun.out().trim()
  if (tokenExit !== 0 || token === '') {
    lines.push(`  alice's EMA flow failed: ${tokenRun.err().trim()}`, '')
    return lines
  }
  lines.push(`  alice, ID token → ID-JAG → access token (${token.length} characters, audience ${mcpUrl})`)
  const callRun = captureIo(io.env)
  const callExit = await runCall([mcpUrl, 'echo', '{"message":"hello through the gateway"}', '--token', token], callRun.io)
  let text = callRun.err().trim()
  try {
    const result = JSON.parse(callRun.out()) as { content?: Array<{ type?: string; text?: string }> }
    text = result.content?.find((c) => c.type === 'text')?.text ?? callRun.out().trim()
  } catch {}
  lines.push(`  tools/call echo with it: ${callExit === 0 ? `"${text}"` : `FAILED — ${text}`}`, '')
  return lines
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
