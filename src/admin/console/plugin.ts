import { readFileSync } from 'node:fs'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { ConsoleSources } from './sources.ts'
import { layout, type ViewPath } from './layout.ts'
import type { Html } from './html.ts'
import { parseExplainInput } from './explain-input.ts'
import { serversView } from './views/servers.ts'
import { decisionsView } from './views/decisions.ts'
import { tokensView } from './views/tokens.ts'
import { idpsView } from './views/idps.ts'
import { keysView } from './views/keys.ts'
import { configView } from './views/config.ts'
import { replicasView } from './views/replicas.ts'
import { playgroundView, type PlaygroundForm } from './views/playground.ts'

export interface ConsoleOptions {
  readonly sources: ConsoleSources
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** Served from memory; read once when the plugin loads. */
const ASSETS: ReadonlyMap<string, { readonly type: string; readonly body: Buffer }> = new Map([
  ['console.css', 'text/css; charset=utf-8'],
  ['console.js', 'text/javascript; charset=utf-8'],
  ['icon.svg', 'image/svg+xml'],
].map(([name = '', type = '']) => [name, { type, body: readFileSync(new URL(`./assets/${name}`, import.meta.url)) }]))

/**
 * The read-only web console of design §5a on the admin listener: server-rendered views, each also
 * as JSON under /api/, a strict CSP (no inline script or style), and a policy playground.
 * `admin.token` guards it with the rest of the listener (admin-server.ts).
 */
export async function consoleRoutes (app: FastifyInstance, { sources }: ConsoleOptions): Promise<void> {
  app.addHook('onSend', async function securityHeaders (_request, reply) {
    reply.header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
  })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 65_536 }, function form (_request, body, done) {
    done(null, Object.fromEntries(new URLSearchParams(String(body))))
  })

  app.get<{ Params: { name: string } }>('/assets/:name', async function asset (request, reply) {
    const found = ASSETS.get(request.params.name)
    if (found === undefined) return await reply.code(404).send({ error: 'not found' })
    return await reply.type(found.type).header('cache-control', 'private, max-age=300').send(found.body)
  })

  const page = async (reply: FastifyReply, path: ViewPath, title: string, body: Html): Promise<FastifyReply> =>
    await reply.type('text/html; charset=utf-8').send(layout(path, title, body))

  // the views
  app.get('/', async function servers (_request, reply) {
    return await page(reply, '/', 'Servers', serversView(await sources.servers()))
  })
  app.get('/decisions', async function decisions (_request, reply) {
    return await page(reply, '/decisions', 'Recent decisions', decisionsView(sources.decisions(100), (id) => sources.traceUrl(id)))
  })
  app.get('/tokens', async function tokens (_request, reply) {
    return await page(reply, '/tokens', 'Token requests', tokensView(await sources.tokens()))
  })
  app.get('/idps', async function idps (_request, reply) {
    return await page(reply, '/idps', 'Identity providers', idpsView(sources.idps()))
  })
  app.get('/keys', async function keys (_request, reply) {
    return await page(reply, '/keys', 'Signing keys', keysView(sources.keys()))
  })
  app.get('/config', async function config (_request, reply) {
    return await page(reply, '/config', 'Config', configView(sources.config(), sources.reloads()))
  })
  app.get('/replicas', async function replicas (_request, reply) {
    return await page(reply, '/replicas', 'Replicas', replicasView(sources.replicas()))
  })
  app.get('/playground', async function playground (_request, reply) {
    const names = sources.serverNames()
    const form: PlaygroundForm = { server: names[0] ?? '', scopes: '', claims: '{}', kind: 'tool', name: '' }
    return await page(reply, '/playground', 'Policy playground', playgroundView(names, form, undefined, undefined))
  })
  app.post('/playground', async function playgroundForm (request, reply) {
    const body = request.body
    const text = (key: string): string => typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>)[key] === 'string' ? (body as Record<string, string>)[key] ?? '' : ''
    const form: PlaygroundForm = { server: text('server'), scopes: text('scopes'), claims: text('claims'), kind: text('kind') || 'tool', name: text('name') }
    const input = parseExplainInput(body)
    const rows = 'error' in input ? undefined : sources.playground(input.identity, input.item)
    const error = 'error' in input ? input.error : rows === undefined ? `no server ${JSON.stringify(form.server)}` : undefined
    return await page(reply.code(error === undefined ? 200 : 400), '/playground', 'Policy playground', playgroundView(sources.serverNames(), form, rows, error))
  })

  // the same, as JSON
  app.get('/api/servers', async function apiServers () {
    return { servers: await sources.servers() }
  })
  app.get<{ Querystring: { limit?: string } }>('/api/decisions', async function apiDecisions (request) {
    const limit = Number.parseInt(request.query.limit ?? '100', 10)
    const decisions = sources.decisions(Number.isFinite(limit) ? Math.min(Math.max(limit, 0), 1000) : 100)
    return { decisions: decisions.map((d) => ({ ...d, traceUrl: d.traceId === undefined ? undefined : sources.traceUrl(d.traceId) })) }
  })
  app.post('/api/explain', async function apiExplain (request, reply) {
    const input = parseExplainInput(request.body)
    if ('error' in input) return await reply.code(400).send({ error: input.error })
    if (input.item === undefined) return await reply.code(400).send({ error: 'name a tool, prompt or resource' })
    const answer = sources.explain(input.identity, input.item)
    if (answer === undefined) return await reply.code(404).send({ error: `no server ${JSON.stringify(input.identity.server)}` })
    return answer
  })
  app.post('/api/playground', async function apiPlayground (request, reply) {
    const input = parseExplainInput(request.body)
    if ('error' in input) return await reply.code(400).send({ error: input.error })
    const rows = sources.playground(input.identity, input.item)
    if (rows === undefined) return await reply.code(404).send({ error: `no server ${JSON.stringify(input.identity.server)}` })
    return { server: input.identity.server, rows }
  })
  app.get('/api/tokens', async function apiTokens () {
    return { tokens: await sources.tokens() }
  })
  app.get('/api/idps', async function apiIdps () {
    return { idps: sources.idps() }
  })
  app.get('/api/keys', async function apiKeys () {
    return { keys: sources.keys() }
  })
  app.get('/api/config', async function apiConfig () {
    return { config: sources.config(), reloads: sources.reloads() }
  })
  app.get('/api/replicas', async function apiReplicas () {
    const replicas = sources.replicas()
    return { store: replicas !== undefined, replicas: replicas ?? [] }
  })
}
