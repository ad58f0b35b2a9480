// Security finding 5: a flood of anonymous /oauth/authorize requests from one client address
// (behind a balancer the gateway trusts, so request.ip comes from X-Forwarded-For) gets 20
// logins at most, then 429 with Retry-After; the store does not grow with the flood, and a user
// at another address logs in during it. A login that finishes gives its address's place back.
import t from 'tap'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { Browser, signIn } from '../helpers/browser.ts'
import { PUBLIC_APP, pkcePair, startFederatedStack } from '../helpers/federated.ts'

const store = new MemoryStore()
// No authorization.rateLimits: the bound on logins in progress is tested on its own.
const stack = await startFederatedStack(undefined, { store, trustProxy: ['127.0.0.1'], oauthRateLimits: '[]' })
t.teardown(() => stack.close())

const FLOODER = '203.0.113.7'
const BOUND = 20

async function authorize (address: string, accept = 'application/json'): Promise<Response> {
  return await fetch(stack.authorizeUrl(PUBLIC_APP), { redirect: 'manual', headers: { 'x-forwarded-for': address, accept } })
}

t.test('1,000 requests from one address: 20 logins, then 429; a user elsewhere logs in meanwhile', async (t) => {
  const sizeBefore = store.size
  const statuses = new Map<number, number>()
  const started: string[] = []
  const retryAfter: number[] = []
  let next = 0
  const flood = async (): Promise<void> => {
    while (next < 1000) {
      next++
      const res = await authorize(FLOODER)
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      if (res.status === 302) started.push(res.headers.get('location') ?? '')
      if (res.status === 429) {
        retryAfter.push(Number(res.headers.get('retry-after')))
        t.equal(res.headers.get('location'), null, '429: no redirect')
        t.match(await res.json(), { error: 'temporarily_unavailable', error_description: /sign-ins are in progress/ })
      } else await res.arrayBuffer()
    }
  }
  const { verifier, challenge } = pkcePair()
  const control = (async () => {
    const browser = new Browser({ 'x-forwarded-for': '198.51.100.9' })
    return await signIn(browser, stack.authorizeUrl(PUBLIC_APP, { challenge }), 'alice', (url) => url.startsWith(PUBLIC_APP.redirectUri))
  })()
  const [callback] = await Promise.all([control, ...Array.from({ length: 25 }, flood)])
  t.same([...statuses].sort(), [[302, BOUND], [429, 1000 - BOUND]], 'exactly the bound of logins started; the rest refused')
  t.ok(retryAfter.every((s) => Number.isInteger(s) && s >= 1 && s <= 600), 'Retry-After: seconds until the address\'s logins expire')
  t.ok(store.size - sizeBefore <= BOUND + 8, `the store grew by ${store.size - sizeBefore} entries, not by the flood`)

  const code = callback.searchParams.get('code')
  t.ok(code, 'the control login at another address completed during the flood')
  const token = await stack.token({ grant_type: 'authorization_code', code: code ?? '', redirect_uri: PUBLIC_APP.redirectUri, code_verifier: verifier, client_id: PUBLIC_APP.id })
  t.equal(token.status, 200, 'and its code redeems')

  const page = await authorize(FLOODER, 'text/html')
  t.equal(page.status, 429, 'a browser at the flooding address: a 429 page')
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(page.headers.get('retry-after'), /^\d+$/)
  t.match(await page.text(), /Too many sign-ins/)
  t.ok(stack.gw.logs.some((l) => l['event.name'] === 'oauth.authorize' && l['portcullis.auth.reason'] === 'too_many_pending_logins'), 'refusals are logged with their reason')

  // One of the flood's logins reaches our callback (from a browser without its cookie: refused, but taken).
  const atIdp = started[0] ?? ''
  const picker = await (await fetch(atIdp)).text()
  const tx = /name="tx" value="([^"]+)"/.exec(picker)?.[1] ?? ''
  const idpAnswer = await fetch(new URL('/authorize', atIdp), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ tx, username: 'bob' }).toString() })
  const cb = await fetch(idpAnswer.headers.get('location') ?? 'invalid:', { redirect: 'manual', headers: { 'x-forwarded-for': FLOODER } })
  t.match(cb.headers.get('location'), /error=access_denied/, 'the stray callback is refused')
  t.equal((await authorize(FLOODER)).status, 302, 'and its place is free again: one more login may start')
  t.equal((await authorize(FLOODER)).status, 429, 'but only one')
  t.equal((await authorize('203.0.113.8')).status, 302, 'the next address is counted on its own')
})
