import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import { parseConfig } from '../config/load.ts'
import { buildGateway } from '../gateway.ts'
import { DEFAULT_DEV_IDP_YAML, DEMO_CLIENT, buildDevIdp, parseDevIdpConfig } from '../dev-idp/index.ts'
import type { CliIo } from './io.ts'

const require = createRequire(import.meta.url)

/**
 * `portcullis demo` (`npm start`): the dev IdP, a real MCP server (server-everything, Streamable
 * HTTP) and the gateway in front of it as its authorization server, all on 127.0.0.1; then one
 * command to paste that walks EMA (ID token → ID-JAG → access token) and calls a tool, and how to
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
  io.stdout.write([
    '',
    `  dev IdP (OpenID Provider)  ${idpUrl}        users alice/alice-demo (eng), bob/bob-demo (sales)`,
    `  upstream MCP server        http://127.0.0.1:${upstreamPort}/mcp   (server-everything, no authorization of its own)`,
    `  gateway                    ${mcpUrl}   (EMA: ID-JAG → access token)`,
    `  admin                      ${adminUrl}/metrics  /healthz  /readyz`,
    '',
    'Without a token the gateway answers 401 and points at its metadata:',
    `  node bin/portcullis.js call ${mcpUrl} echo '{"message":"hi"}'`,
    '',
    `Try: TOKEN=$(node bin/portcullis.js token --idp ${idpUrl} --user alice --server ${mcpUrl}) && node bin/portcullis.js call ${mcpUrl} echo '{"message":"hello through the gateway"}' --token "$TOKEN"`,
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
