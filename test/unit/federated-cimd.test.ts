// Client ID metadata documents over real TLS: a local https server with a certificate for
// cimd.test (made with openssl), reached only because the fetch connects to the address the
// injected resolver returned and the guard admitted — the SSRF rules themselves are the e2e
// hostile table's (real DNS, real addresses).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OAuthError } from '../../src/authorization-server/errors.ts'
import { ClientRegistry } from '../../src/authorization-server/login/clients.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { clientFromDocument, clientIdMetadataUrl, fetchClientMetadataDocument, type CimdFetchOptions } from '../../src/authorization-server/login/client-metadata-document.ts'

let cert: string
let key: string
try {
  const dir = mkdtempSync(join(tmpdir(), 'cimd-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=cimd.test',
    '-addext', 'subjectAltName=DNS:cimd.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
  key = readFileSync(join(dir, 'key.pem'), 'utf8')
} catch {
  t.plan(0, 'openssl is not available to make a test certificate')
  process.exit(0)
}

let hits = 0
const server = createServer({ key, cert }, (req, res) => {
  hits++
  const id = `https://cimd.test:${port}${req.url ?? ''}`
  const json = (body: unknown): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
  if (req.url === '/client.json') return json({ client_id: id, client_name: 'CIMD app', redirect_uris: ['http://127.0.0.1:7/cb', `https://cimd.test:${port}/cb`] })
  if (req.url === '/other-id.json') return json({ client_id: `https://cimd.test:${port}/client.json`, redirect_uris: ['http://127.0.0.1:7/cb'] })
  if (req.url === '/evil-redirect.json') return json({ client_id: id, redirect_uris: ['https://evil.example/cb'] })
  if (req.url === '/secret.json') return json({ client_id: id, redirect_uris: ['http://127.0.0.1:7/cb'], token_endpoint_auth_method: 'client_secret_basic' })
  if (req.url === '/moved.json') { res.writeHead(302, { location: `https://cimd.test:${port}/client.json` }).end(); return }
  if (req.url === '/big.json') return json({ client_id: id, redirect_uris: ['http://127.0.0.1:7/cb'], padding: 'x'.repeat(20_000) })
  if (req.url === '/html.json') { res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>'); return }
  if (req.url === '/slow.json') return // never answers
  res.writeHead(404).end()
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const port = (server.address() as AddressInfo).port
t.teardown(() => { server.closeAllConnections(); server.close() })

const opts: CimdFetchOptions = {
  resolve: async (host) => host === 'cimd.test' ? [{ address: '127.0.0.1', family: 4 }] : [],
  isAllowedAddress: (address) => address === '127.0.0.1', // stands in for "public"
  timeoutMs: 500,
  maxBytes: 16 * 1024,
  tls: { ca: cert },
}
const fetchDoc = async (path: string, o: CimdFetchOptions = opts): Promise<unknown> => {
  const id = `https://cimd.test:${port}${path}`
  return await fetchClientMetadataDocument(id, new URL(id), ['localhost', '127.0.0.1'], o).catch((err: unknown) => err)
}
const reason = (err: unknown): string | undefined => err instanceof OAuthError ? err.reason : undefined
const thrown = (fn: () => unknown): unknown => { try { fn() } catch (err) { return err } return undefined }

t.test('a good document: pinned to the checked address, TLS verified for the host name', async (t) => {
  t.same(await fetchDoc('/client.json'), {
    clientId: `https://cimd.test:${port}/client.json`,
    auth: 'none',
    secret: undefined,
    jwksUri: undefined,
    jwks: undefined,
    redirectUris: ['http://127.0.0.1:7/cb', `https://cimd.test:${port}/cb`],
    clientName: 'CIMD app',
  }, 'a public client; its own host is an allowed redirect host; its client_name kept for the consent page')
  t.equal(reason(await fetchDoc('/client.json', { ...opts, tls: {} })), 'cimd_fetch_failed', 'an untrusted certificate fails')
})

t.test('what is refused', async (t) => {
  t.equal(reason(await fetchDoc('/client.json', { ...opts, resolve: async () => [{ address: '127.0.0.1', family: 4 }, { address: '10.0.0.1', family: 4 }] })),
    'cimd_forbidden_address', 'one forbidden address among the answers is enough')
  t.equal(reason(await fetchDoc('/client.json', { ...opts, resolve: async () => [] })), 'cimd_dns_failed')
  t.equal(reason(await fetchDoc('/other-id.json')), 'cimd_client_id_mismatch', 'the document must be about its own URL')
  t.equal(reason(await fetchDoc('/evil-redirect.json')), 'cimd_bad_redirect_uri')
  t.equal(reason(await fetchDoc('/secret.json')), 'cimd_bad_document', 'only public clients')
  t.equal(reason(await fetchDoc('/moved.json')), 'cimd_fetch_failed', 'redirects are not followed')
  t.equal(reason(await fetchDoc('/big.json')), 'cimd_fetch_failed', 'size cap')
  t.equal(reason(await fetchDoc('/html.json')), 'cimd_fetch_failed', 'not JSON')
  t.equal(reason(await fetchDoc('/slow.json')), 'cimd_fetch_failed', 'time cap')
})

t.test('client_id URL shape', async (t) => {
  t.equal(clientIdMetadataUrl('plain-client'), undefined, 'not a URL client id')
  t.equal(clientIdMetadataUrl('http://app.example/c.json'), undefined, 'http is not a metadata document URL')
  t.equal(clientIdMetadataUrl('https://app.example/c.json')?.hostname, 'app.example')
  for (const bad of ['https://app.example', 'https://app.example/', 'https://app.example/c.json?x=1', 'https://app.example/c.json#f',
    'https://u:p@app.example/c.json', 'https://APP.example/c.json', 'https://app.example:443/c.json', 'https://app.example/a/./c.json']) {
    t.equal(reason(thrown(() => clientIdMetadataUrl(bad))), 'bad_client_id_url', bad)
  }
  t.equal(reason(thrown(() => clientFromDocument('https://a.example/c', new URL('https://a.example/c'), [], ['localhost']))), 'cimd_bad_document', 'not an object')
  t.equal(reason(thrown(() => clientFromDocument('https://a.example/c', new URL('https://a.example/c'), { client_id: 'https://a.example/c', redirect_uris: ['http://localhost/cb'], client_secret: 's' }, ['localhost']))),
    'cimd_bad_document', 'a secret in a public document')
})

t.test('the registry fetches a document once and caches it', async (t) => {
  const registry = new ClientRegistry(new Map(), { dynamic: false, clientIdMetadataDocuments: true, allowedRedirectHosts: ['127.0.0.1'], maxClients: 100, unusedClientTtlSeconds: 3600 }, new MemoryStore(), opts)
  const before = hits
  const id = `https://cimd.test:${port}/client.json`
  const [a, b] = await Promise.all([registry.find(id), registry.find(id)])
  t.equal(a?.clientId, id)
  t.equal(b, a, 'concurrent lookups share one fetch')
  t.same(await registry.find(id), a)
  t.equal(hits - before, 1, 'one fetch for three lookups')
  t.equal(await registry.find('unknown'), undefined)
  const off = new ClientRegistry(new Map(), { dynamic: false, clientIdMetadataDocuments: false, allowedRedirectHosts: [], maxClients: 100, unusedClientTtlSeconds: 3600 }, new MemoryStore(), opts)
  t.equal(await off.find(id), undefined, 'with documents off, a URL is just an unknown client id')
  const registered = await off.register({ auth: 'none', secret: undefined, jwksUri: undefined, jwks: undefined, redirectUris: ['http://127.0.0.1/cb'] })
  t.match(registered.clientId, /^dyn-[A-Za-z0-9_-]{22}$/)
  t.same(await off.find(registered.clientId), registered)
  t.same(await off.confidential(registered.clientId), registered)
  t.equal(await off.confidential('dyn-unknown'), undefined)
})
