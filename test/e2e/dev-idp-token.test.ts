/**
 * `portcullis token` end to end against the real dev IdP and a tiny real resource AS of this
 * test's own (node:http), which serves RFC 9728 / RFC 8414 metadata and answers the jwt-bearer
 * grant by verifying the ID-JAG with jose against the dev IdP's published JWKS.
 * Also `portcullis dev-idp` as a process: banner, discovery, SIGTERM.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtemp, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { runToken } from '../../src/cli/token.ts'
import { runDevIdp } from '../../src/cli/dev-idp.ts'
import { DEFAULT_TEST_YAML, startDevIdp, testIdpYaml } from '../helpers/dev-idp.ts'

const AS_CLIENTS: Record<string, string> = { 'demo-client': 'demo-secret', 'cli-2-at-as': 'as-secret-2' }
const verified: JWTPayload[] = []
let idpIssuer = ''

/** The resource AS: the only trust it has is the dev IdP's issuer, whose JWKS it discovers. */
const as = createServer((req, res) => { void handle(req, res) })
as.listen(0, '127.0.0.1')
await once(as, 'listening')
const asUrl = `http://127.0.0.1:${(as.address() as AddressInfo).port}`
t.teardown(() => { as.close() })

async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
  }
  if (req.method === 'GET' && req.url === '/.well-known/oauth-protected-resource/mcp/everything') {
    return send(200, { resource: `${asUrl}/mcp/everything`, authorization_servers: [asUrl] })
  }
  if (req.method === 'GET' && req.url === '/.well-known/oauth-authorization-server') {
    return send(200, {
      issuer: asUrl,
      token_endpoint: `${asUrl}/token`,
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:jwt-bearer'],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
      authorization_grant_profiles_supported: ['urn:ietf:params:oauth:grant-profile:id-jag']
    })
  }
  if (req.method !== 'POST' || req.url !== '/token') return send(404, { error: 'not_found' })
  const [id, secret] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':').map(decodeURIComponent)
  if (id === undefined || AS_CLIENTS[id] === undefined || AS_CLIENTS[id] !== secret) return send(401, { error: 'invalid_client', error_description: 'bad client' })
  let body = ''
  for await (const chunk of req) body += String(chunk)
  const form = new URLSearchParams(body)
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return send(400, { error: 'unsupported_grant_type' })
  try {
    const discovery: unknown = await (await fetch(`${idpIssuer}/.well-known/openid-configuration`)).json()
    const jwksUri = typeof discovery === 'object' && discovery !== null && 'jwks_uri' in discovery ? String(discovery.jwks_uri) : ''
    const { payload } = await jwtVerify(form.get('assertion') ?? '', createRemoteJWKSet(new URL(jwksUri)), {
      issuer: idpIssuer,
      audience: asUrl,
      typ: 'oauth-id-jag+jwt',
      algorithms: ['ES256', 'RS256'],
      maxTokenAge: 600,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
    })
    if (payload['client_id'] !== id) return send(400, { error: 'invalid_grant', error_description: 'client_id mismatch' })
    if (payload['resource'] !== `${asUrl}/mcp/everything` || form.get('resource') !== payload['resource']) return send(400, { error: 'invalid_grant', error_description: 'resource mismatch' })
    verified.push(payload)
    send(200, { access_token: `at-${String(payload.jti)}`, token_type: 'Bearer', expires_in: 3600, scope: payload['scope'] })
  } catch (error) {
    send(400, { error: 'invalid_grant', error_description: error instanceof Error ? error.message : 'bad assertion' })
  }
}

// The built-in configuration, its audience pointed at this AS, and a second client known there by another id.
const idp = await startDevIdp(DEFAULT_TEST_YAML.replaceAll('http://127.0.0.1:8080', asUrl)
  .replace('    secret: demo-secret\n', '    secret: demo-secret\n  - { clientId: cli-2, secret: cli-2-secret, idJagClientId: cli-2-at-as }\n'))
idpIssuer = idp.issuer
t.teardown(() => idp.close())
const SERVER = `${asUrl}/mcp/everything`

async function token (...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' }
  const sink = (key: 'stdout' | 'stderr'): Writable => new Writable({ write (chunk: Buffer, _e, cb) { out[key] += chunk.toString(); cb() } })
  const code = await runToken(argv, { stdout: sink('stdout'), stderr: sink('stderr'), env: {} })
  return { code, ...out }
}

t.test('the defaults: alice, her demo password, demo-client at both ends', async (t) => {
  const result = await token('--idp', idp.issuer, '--user', 'alice', '--server', SERVER)
  t.equal(result.stderr, '')
  t.equal(result.code, 0)
  const last = verified.at(-1)
  t.equal(result.stdout, `at-${String(last?.jti)}\n`, 'the access token alone on stdout')
  t.match(last, { iss: idp.issuer, aud: asUrl, client_id: 'demo-client', resource: SERVER, scope: 'tools.read tools.write', groups: ['eng'] })
})

t.test('explicit clients, a client id mapped for the AS, and a scope', async (t) => {
  const result = await token('--idp', `${idp.issuer}/`, '--user', 'bob', '--password', 'bob-demo', '--server', SERVER, '--scope', 'tools.read',
    '--client-id', 'cli-2', '--client-secret', 'cli-2-secret', '--as-client-id', 'cli-2-at-as', '--as-client-secret', 'as-secret-2')
  t.equal(result.code, 0, result.stderr)
  t.match(verified.at(-1), { client_id: 'cli-2-at-as', scope: 'tools.read', groups: ['sales'] })
})

t.test('failures: exit 1, the OAuth error on stderr, nothing on stdout, no secret echoed', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--user', 'bob', '--scope', 'tools.write'], /^portcullis token: token exchange at the IdP failed: HTTP 400 invalid_scope: none of the requested scopes/],
    [['--user', 'alice', '--password', 'hunter2-wrong'], /login at the IdP \(password grant\) failed: HTTP 400 invalid_grant: the username or password is wrong/],
    [['--user', 'alice', '--client-secret', 'nope-secret'], /login at the IdP \(password grant\) failed: HTTP 401 invalid_client/],
    [['--user', 'alice', '--as-client-secret', 'nope-secret'], /jwt-bearer grant at the authorization server failed: HTTP 401 invalid_client: bad client/],
    [['--user', 'alice', '--server', `${asUrl}/mcp/other`], /protected-resource metadata failed: HTTP 404/],
    [['--user', 'alice', '--idp', 'http://127.0.0.1:9'], /IdP discovery: cannot reach http:\/\/127\.0\.0\.1:9/],
  ]
  for (const [args, expected] of cases) {
    const result = await token('--idp', idp.issuer, '--server', SERVER, ...args)
    t.equal(result.code, 1, args.join(' '))
    t.equal(result.stdout, '')
    t.match(result.stderr, expected)
    t.notMatch(result.stderr, /hunter2-wrong|nope-secret|demo-secret|eyJ/)
  }
})

t.test('usage errors exit 2', async (t) => {
  t.equal((await token('--idp', idp.issuer, '--user', 'alice')).code, 2, 'no --server')
  t.match(await token('--idp', idp.issuer, '--user', 'carol', '--server', SERVER), { code: 2, stderr: /--password is required/ })
  t.match(await token('--idp', 'not a url', '--user', 'alice', '--server', SERVER), { code: 2, stderr: /--idp must be an http\(s\) URL/ })
  t.match(await token('--bogus'), { code: 2 })
  t.match(await token('--help'), { code: 0, stdout: /^usage: portcullis token/ })
})

t.test('portcullis dev-idp: invalid config and usage', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dev-idp-cli-'))
  await writeFile(join(dir, 'bad.yaml'), 'users: [{ username: a }]\nclients: [{ clientId: c, secret: s3cret-value }]\n')
  const err = { text: '' }
  const io = { stdout: new Writable({ write (_c, _e, cb) { cb() } }), stderr: new Writable({ write (c: Buffer, _e, cb) { err.text += c.toString(); cb() } }), env: {} }
  t.equal(await runDevIdp(['--config', join(dir, 'bad.yaml')], io), 1)
  t.match(err.text, /users\[0\]\.password: is required\n.*users\[0\]\.email: is required\ninvalid: .*bad\.yaml: 2 problems/s)
  t.equal(await runDevIdp(['--nope'], io), 2)
  await writeFile(join(dir, 'busy.yaml'), `listen: { host: 127.0.0.1, port: ${new URL(asUrl).port} }\n`)
  t.equal(await runDevIdp(['--config', join(dir, 'busy.yaml')], io), 1, 'port in use')
  t.match(err.text, /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/)
})

t.test('portcullis dev-idp as a process: banner, discovery, SIGTERM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dev-idp-cli-'))
  await writeFile(join(dir, 'idp.yaml'), `${testIdpYaml()}\nlisten: { host: 127.0.0.1, port: 0 }\n`)
  const script = `import { runDevIdp } from ${JSON.stringify(new URL('../../src/cli/dev-idp.ts', import.meta.url).href)}
process.exitCode = await runDevIdp(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: { PORTCULLIS_LOG_LEVEL: 'warn' } })`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, '--', '--config', join(dir, 'idp.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const exited = once(child, 'exit')
  const deadline = Date.now() + 20_000
  while (!/Ctrl-C stops it/.test(stdout) && Date.now() < deadline && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 50))
  const issuer = /dev IdP issuer +(\S+)/.exec(stdout)?.[1]
  t.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/, stdout)
  t.match(stdout, /alice +alice@example\.com +groups \[eng\]\n/)
  t.notMatch(stdout, /alice-pw-1|demo-secret-9/, 'a config file\'s passwords are not printed')
  const discovery: unknown = await (await fetch(`${String(issuer)}/.well-known/openid-configuration`)).json()
  t.match(discovery, { issuer })
  child.kill('SIGTERM')
  t.same(await exited, [0, null], 'closes and exits 0')
})
