// The consent page of design §5 against the running gateway and the dev IdP: a client the
// operator did not configure (dynamic registration, client ID metadata document) gets no code
// until the signed-in user presses Allow on a page of ours. Every forged answer — no or a wrong
// CSRF token, another consent's, a replay, another browser, GET, another content type, another
// site's Origin, repeated fields — is a 400 page: no code, nothing sent to the redirect URI.
// Deny is access_denied; an Allow is remembered per user, client, resource and scopes.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { Browser, answerConsent, signIn, signInToConsent, type ConsentPage } from '../helpers/browser.ts'
import { PUBLIC_APP, WEB_APP, pkcePair, startFederatedStack } from '../helpers/federated.ts'

const store = new MemoryStore()
const stack = await startFederatedStack(undefined, { store })
t.teardown(() => stack.close())

const HOSTILE_NAME = '<script>alert(1)</script>"\'\u202Egnp.exe'
const ATTACKER = { id: await register('http://127.0.0.1:9/attacker', HOSTILE_NAME), redirectUri: 'http://127.0.0.1:9/attacker' }
const CONSENT_URL = `${stack.issuer}/oauth/consent`

async function register (redirectUri: string, name: string): Promise<string> {
  const res = await fetch(`${stack.issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', client_name: name }),
  })
  const body = await res.json() as { client_id: string }
  return body.client_id
}

const codesIssued = (): number => stack.gw.logs.filter((l) => l['event.name'] === 'oauth.authorize' && l.outcome === 'code_issued').length
const lastConsentReason = (): unknown => stack.gw.logs.filter((l) => l['event.name'] === 'oauth.consent' && l.outcome === 'rejected').at(-1)?.['portcullis.auth.reason']
const sawConsent = (browser: Browser): boolean => browser.hops.some((h) => h.url === CONSENT_URL)
const reachedClient = (browser: Browser, redirectUri: string): boolean => browser.hops.some((h) => h.url.startsWith(redirectUri) || (h.location ?? '').startsWith(redirectUri))

/** A POST to /oauth/consent as a forger would send it: any body and headers, optionally with a browser's cookies. */
async function post (body: string, headers: Record<string, string>, browser?: Browser): Promise<Response> {
  const cookie = browser?.cookieFor(CONSENT_URL) ?? ''
  return await fetch(CONSENT_URL, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: stack.issuer, ...(cookie === '' ? {} : { cookie }), ...headers },
    body,
  })
}

/** Sign in to the consent page; its handle and CSRF token join the values no log line may hold. */
async function toConsent (browser: Browser, url: string, user: string): Promise<ConsentPage> {
  const page = await signInToConsent(browser, url, user)
  stack.seen.push(...Object.values(page.form.fields))
  return page
}

const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString()

t.test('a client nobody configured: the consent page after the IdP login, and no code', async (t) => {
  const before = codesIssued()
  const browser = new Browser()
  const page = await toConsent(browser, stack.authorizeUrl(ATTACKER, { state: 'atk' }), 'alice')
  t.equal(page.res.status, 200)
  t.ok(page.url.startsWith(`${stack.issuer}/oauth/callback?`), 'shown in answer to the IdP\'s callback')
  const h = page.res.headers
  t.match(h.get('content-security-policy'), /default-src 'none'/)
  t.match(h.get('content-security-policy'), /frame-ancestors 'none'/)
  t.match(h.get('content-security-policy'), /form-action 'self' http:\/\/127\.0\.0\.1:9(;|$)/, 'the form goes to us, and its redirect to the client')
  t.match(h.get('content-security-policy'), /style-src 'sha256-[A-Za-z0-9+/]+=*'/, 'no unsafe-inline')
  t.notMatch(h.get('content-security-policy'), /script-src|unsafe/)
  t.equal(h.get('x-frame-options'), 'DENY')
  t.equal(h.get('cache-control'), 'no-store')
  t.equal(h.get('referrer-policy'), 'no-referrer')
  t.match(h.get('content-type'), /^text\/html/)
  t.match(page.html, /<p class="to"><strong>127\.0\.0\.1:9<\/strong><\/p>/, 'the host the code goes to, prominently')
  t.ok(page.html.includes('alice@example.com'), 'the user')
  t.ok(page.html.includes(ATTACKER.id), 'the client id')
  t.ok(page.html.includes('<code>tools.read</code> <code>tools.write</code>'), 'the scopes')
  t.ok(page.html.includes(stack.resource), 'the server')
  t.notMatch(page.html, /unnamed client/, 'the name the client registered is shown')
  t.ok(page.html.includes('&#60;script'), 'escaped, never as markup')
  t.notOk(page.html.includes('<script'), 'no markup of the client\'s')
  t.notOk(page.html.includes('\u202E'), 'no direction override')
  t.same(Object.keys(page.form.fields).sort(), ['csrf', 'handle'])
  t.equal(page.form.action, CONSENT_URL)
  const cookie = [...browser.cookies].find(([name]) => name.startsWith('portcullis_consent_'))
  t.equal(cookie?.[1].path, '/oauth/consent', 'a cookie binds the page to this browser')
  t.equal(codesIssued(), before, 'no code issued')
  t.notOk(reachedClient(browser, ATTACKER.redirectUri), 'nothing went to the redirect URI')
})

t.test('forged answers: a 400 page, no code, nothing at the redirect URI', async (t) => {
  const { verifier, challenge } = pkcePair()
  const victim = new Browser()
  const other = new Browser()
  const page = await toConsent(victim, stack.authorizeUrl(ATTACKER, { challenge, state: 'atk' }), 'alice')
  const second = await toConsent(other, stack.authorizeUrl(ATTACKER, { state: 'atk-2' }), 'bob')
  const { handle, csrf } = page.form.fields as { handle: string, csrf: string }
  const good = { handle, csrf, decision: 'allow' }
  const before = codesIssued()
  const cases: Array<{ name: string, send: () => Promise<Response>, reason: string }> = [
    { name: 'no CSRF token', send: async () => await post(form({ handle, decision: 'allow' }), {}, victim), reason: 'missing_csrf' },
    { name: 'a wrong CSRF token', send: async () => await post(form({ ...good, csrf: randomBytes(32).toString('base64url') }), {}, victim), reason: 'csrf_mismatch' },
    { name: 'the CSRF token of another consent', send: async () => await post(form({ ...good, csrf: second.form.fields.csrf ?? '' }), {}, victim), reason: 'csrf_mismatch' },
    { name: 'another consent\'s handle with this token', send: async () => await post(form({ ...good, handle: second.form.fields.handle ?? '' }), {}, victim), reason: 'csrf_mismatch' },
    { name: 'from a browser without the cookie', send: async () => await post(form(good), {}), reason: 'browser_mismatch' },
    { name: 'from another browser, with its own consent cookie', send: async () => await post(form(good), {}, other), reason: 'browser_mismatch' },
    { name: 'an unknown handle', send: async () => await post(form({ ...good, handle: randomBytes(32).toString('base64url') }), {}, victim), reason: 'unknown_consent' },
    { name: 'GET with the fields in the query', send: async () => await victim.get(`${CONSENT_URL}?${form(good)}`), reason: 'consent_not_post' },
    { name: 'a text/plain body', send: async () => await post(form(good), { 'content-type': 'text/plain' }, victim), reason: 'wrong_content_type' },
    { name: 'a JSON body', send: async () => await post(JSON.stringify(good), { 'content-type': 'application/json' }, victim), reason: 'wrong_content_type' },
    { name: 'a multipart body', send: async () => await post(form(good), { 'content-type': 'multipart/form-data; boundary=x' }, victim), reason: 'wrong_content_type' },
    { name: 'the Origin of another site', send: async () => await post(form(good), { origin: 'https://evil.example' }, victim), reason: 'cross_origin' },
    { name: 'an opaque Origin (null)', send: async () => await post(form(good), { origin: 'null' }, victim), reason: 'cross_origin' },
    { name: 'the Referer of another site', send: async () => await post(form(good), { referer: 'https://evil.example/page' }, victim), reason: 'cross_origin' },
    { name: 'Sec-Fetch-Site cross-site', send: async () => await post(form(good), { 'sec-fetch-site': 'cross-site' }, victim), reason: 'cross_origin' },
    { name: 'the decision twice', send: async () => await post(`${form(good)}&decision=deny`, {}, victim), reason: 'duplicate_parameter' },
    { name: 'the handle twice', send: async () => await post(`${form(good)}&handle=${second.form.fields.handle ?? ''}`, {}, victim), reason: 'duplicate_parameter' },
    { name: 'the CSRF token twice', send: async () => await post(`${form(good)}&csrf=x`, {}, victim), reason: 'duplicate_parameter' },
    { name: 'an extra field', send: async () => await post(`${form(good)}&redirect_uri=https%3A%2F%2Fevil.example%2F`, {}, victim), reason: 'unexpected_parameter' },
    { name: 'a decision that is neither', send: async () => await post(form({ ...good, decision: 'yes' }), {}, victim), reason: 'bad_decision' },
    { name: 'an oversized body', send: async () => await post(`${form(good)}&pad=${'x'.repeat(10_000)}`, {}, victim), reason: 'malformed_form' },
  ]
  for (const c of cases) {
    const res = await c.send()
    const body = await res.text()
    t.equal(res.status, 400, `${c.name}: 400`)
    t.equal(res.headers.get('location'), null, `${c.name}: no redirect`)
    t.notOk(body.includes('code='), `${c.name}: no code`)
    t.equal(lastConsentReason(), c.reason, `${c.name}: reason ${c.reason}`)
  }
  const html = await post(form({ handle, decision: 'allow' }), { accept: 'text/html' }, victim)
  t.match(html.headers.get('content-type'), /^text\/html/, 'a browser gets an HTML page')
  t.match(html.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  t.equal(codesIssued(), before, 'no code issued by any of them')
  t.notOk(reachedClient(victim, ATTACKER.redirectUri) || reachedClient(other, ATTACKER.redirectUri), 'nothing went to the redirect URI')

  const allowed = await answerConsent(victim, page, 'allow')
  t.equal(allowed.status, 303, 'the forgeries did not spend the real consent: Allow answers 303')
  const back = new URL(allowed.headers.get('location') ?? 'invalid:')
  t.equal(`${back.origin}${back.pathname}`, ATTACKER.redirectUri)
  t.equal(back.searchParams.get('state'), 'atk')
  t.equal(back.searchParams.get('iss'), stack.issuer)
  const code = back.searchParams.get('code') ?? ''
  t.equal(codesIssued(), before + 1, 'one code, after Allow')
  t.notOk([...victim.cookies.keys()].some((name) => name.startsWith('portcullis_consent_')), 'the consent cookie is cleared')
  const token = await stack.token({ grant_type: 'authorization_code', code, redirect_uri: ATTACKER.redirectUri, code_verifier: verifier, client_id: ATTACKER.id })
  t.equal(token.status, 200, 'the code redeems like any other')

  const replay = await post(form(good), {}, victim)
  t.equal(replay.status, 400, 'the same answer again: 400')
  t.equal(lastConsentReason(), 'unknown_consent')
  const replayWithCookie = await post(form(good), { cookie: `${page.res.headers.getSetCookie().map((c) => c.split(';')[0]).filter((c) => c?.startsWith('portcullis_consent_')).join('; ')}` })
  t.equal(replayWithCookie.status, 400, 'even with the old cookie put back')
  t.equal(codesIssued(), before + 1, 'answered once')
})

t.test('Deny: access_denied at the redirect URI, with state and iss, and no code', async (t) => {
  const browser = new Browser()
  const before = codesIssued()
  const back = await signIn(browser, stack.authorizeUrl(ATTACKER, { state: 'deny-state', scope: 'tools.read' }), 'bob', (url) => url.startsWith(ATTACKER.redirectUri), { consent: 'deny' })
  t.equal(back.searchParams.get('error'), 'access_denied')
  t.equal(back.searchParams.get('state'), 'deny-state')
  t.equal(back.searchParams.get('iss'), stack.issuer)
  t.notOk(back.searchParams.has('code'))
  t.equal(codesIssued(), before)
  const again = new Browser()
  await toConsent(again, stack.authorizeUrl(ATTACKER, { scope: 'tools.read' }), 'bob')
  t.pass('a Deny is not remembered: the next login asks again')
})

t.test('an Allow is remembered per user, client, resource and scopes', async (t) => {
  const client = { id: await register('http://127.0.0.1:9/remember', 'remembered'), redirectUri: 'http://127.0.0.1:9/remember' }
  const to = (url: string): boolean => url.startsWith(client.redirectUri)
  const first = new Browser()
  await signIn(first, stack.authorizeUrl(client, { scope: 'tools.read' }), 'alice', to)
  t.ok(sawConsent(first), 'first login: the page')
  const second = new Browser()
  const back = await signIn(second, stack.authorizeUrl(client, { scope: 'tools.read' }), 'alice', to)
  t.ok(back.searchParams.get('code'), 'second login: a code')
  t.notOk(sawConsent(second), 'and no page')

  for (const [name, opts, user] of [
    ['more scopes', { scope: 'tools.read tools.write' }, 'alice'],
    ['another resource', { resource: stack.otherResource }, 'alice'],
    ['another user', { scope: 'tools.read' }, 'bob'],
  ] as const) {
    const page = await toConsent(new Browser(), stack.authorizeUrl(client, opts), user)
    t.equal(page.res.status, 200, `${name}: asked again`)
  }
  const twin = { id: await register(client.redirectUri, 'twin'), redirectUri: client.redirectUri }
  const page = await toConsent(new Browser(), stack.authorizeUrl(twin, { scope: 'tools.read' }), 'alice')
  t.equal(page.res.status, 200, 'another client with the same redirect URI: asked')
})

t.test('configured clients never see the page', async (t) => {
  for (const client of [PUBLIC_APP, WEB_APP]) {
    const browser = new Browser()
    const login = await stack.codeFor(client, { browser })
    t.ok(login.code, `${client.id}: a code`)
    t.notOk(sawConsent(browser), `${client.id}: no consent page`)
    t.notOk(browser.hops.some((h) => h.status === 200 && h.url.includes('/oauth/callback')), `${client.id}: the callback redirects at once`)
  }
})

t.test('a client ID metadata document client gets the page', async (t) => {
  // The document as the registry caches it after a checked fetch (the SSRF rules keep a test's own server out).
  const id = 'https://app.example/client.json'
  const redirectUri = 'http://127.0.0.1:9/cimd'
  await store.set(`cimd:${createHash('sha256').update(id).digest('base64url')}`, JSON.stringify({ clientId: id, auth: 'none', redirectUris: [redirectUri] }), 300_000)
  const browser = new Browser()
  const before = codesIssued()
  const page: ConsentPage = await toConsent(browser, stack.authorizeUrl({ id, redirectUri }), 'alice')
  t.ok(page.html.includes(id), 'the page names the document URL')
  t.equal(codesIssued(), before)
  const res = await answerConsent(browser, page, 'allow')
  t.match(res.headers.get('location'), /^http:\/\/127\.0\.0\.1:9\/cimd\?code=/, 'Allow: the code')
})

t.test('no handle, CSRF token, code or secret in any log line', async (t) => {
  for (const line of stack.gw.rawLogs) {
    for (const secret of stack.seen) if (line.includes(secret)) t.fail(`a log line leaks a credential: ${line.slice(0, 200)}`)
  }
  t.ok(stack.gw.logs.some((l) => l['event.name'] === 'oauth.consent' && l.outcome === 'allowed'), 'Allows are audited')
  t.ok(stack.gw.logs.some((l) => l['event.name'] === 'oauth.consent' && l.outcome === 'denied'), 'Denies are audited')
})
