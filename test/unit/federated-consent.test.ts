// The consent page's parts: the store records (waiting logins, remembered Allows), the page's
// escaping of client-chosen text, its headers, and the per-address bound on logins in progress.
import t from 'tap'
import Fastify from 'fastify'
import { OAuthError } from '../../src/authorization-server/errors.ts'
import type { CodeGrant } from '../../src/authorization-server/login/codes.ts'
import { Consents } from '../../src/authorization-server/login/consent.ts'
import { consentHtml, sendConsentPage, shown, shownHost, type ConsentView } from '../../src/authorization-server/login/consent-page.ts'
import { MAX_PENDING_PER_ADDRESS, PendingLogins, addressBucket } from '../../src/authorization-server/login/pending-logins.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'

const grant: CodeGrant = { clientId: 'dyn-x', redirectUri: 'http://127.0.0.1:9/cb', codeChallenge: 'x'.repeat(43), resource: 'https://gw/mcp/a', scopes: ['b', 'a'], subject: 'u1', idpIssuer: 'https://idp', claims: {} }
const options = { rememberSeconds: 60, configuredClients: new Map([['configured', {}]]), secureCookies: true }
const cookieOf = (setCookie: string): string => setCookie.split(';')[0] ?? ''

t.test('waiting logins: bound to their CSRF token and browser, answered once', async (t) => {
  const consents = new Consents(new MemoryStore(), options)
  t.notOk(consents.required('configured'), 'configured clients are not asked')
  t.ok(consents.required('dyn-x'))
  const asked = await consents.ask({ grant, clientState: 's', clientName: undefined, user: 'alice' })
  t.match(asked.cookie, /^portcullis_consent_[A-Za-z0-9_-]{16}=[A-Za-z0-9_-]{43}; Path=\/oauth\/consent; Max-Age=300; HttpOnly; SameSite=Strict; Secure$/)
  const other = await consents.ask({ grant, clientState: 's', clientName: undefined, user: 'alice' })
  const cookie = cookieOf(asked.cookie)
  t.equal(await consents.find(asked.handle, 'wrong', cookie), 'csrf_mismatch')
  t.equal(await consents.find(asked.handle, other.csrf, cookie), 'csrf_mismatch', 'another consent\'s token')
  t.equal(await consents.find(asked.handle, asked.csrf, undefined), 'browser_mismatch')
  t.equal(await consents.find(asked.handle, asked.csrf, cookieOf(other.cookie)), 'browser_mismatch', 'another consent\'s cookie')
  t.equal(await consents.find(asked.handle, asked.csrf, cookie.replace(/=.*/, '=forged')), 'browser_mismatch')
  t.equal(await consents.find('unknown', asked.csrf, cookie), 'unknown')
  t.same(await consents.find(asked.handle, asked.csrf, `a=b; ${cookie}`), { grant, clientState: 's', clientName: undefined, user: 'alice' }, 'found, and not spent by the refusals')
  t.ok(await consents.take(asked.handle))
  t.notOk(await consents.take(asked.handle), 'once')
  t.equal(await consents.find(asked.handle, asked.csrf, cookie), 'unknown')
  t.match(consents.clearCookie(asked.handle), /Max-Age=0/)
})

t.test('an Allow is remembered per issuer, user, client, redirect URI, resource and scopes (in any order)', async (t) => {
  const consents = new Consents(new MemoryStore(), options)
  t.notOk(await consents.remembered(grant))
  await consents.remember(grant)
  t.ok(await consents.remembered(grant))
  t.ok(await consents.remembered({ ...grant, scopes: ['a', 'b'], codeChallenge: 'y'.repeat(43), claims: { groups: ['x'] } }), 'scope order, PKCE and claims do not matter')
  for (const [name, change] of [['scopes', { scopes: ['a'] }], ['more scopes', { scopes: ['a', 'b', 'c'] }], ['resource', { resource: 'https://gw/mcp/b' }],
    ['user', { subject: 'u2' }], ['client', { clientId: 'dyn-y' }], ['issuer', { idpIssuer: 'https://other-idp' }], ['redirect URI', { redirectUri: 'http://127.0.0.1:9/other' }]] as const) {
    t.notOk(await consents.remembered({ ...grant, ...change }), `another ${name}: asked again`)
  }
  const never = new Consents(new MemoryStore(), { ...options, rememberSeconds: 0 })
  await never.remember(grant)
  t.notOk(await never.remembered(grant), 'rememberSeconds 0: never remembered')
})

const view: ConsentView = {
  action: 'http://127.0.0.1:4000/oauth/consent',
  handle: 'h"andle',
  csrf: 'c<srf',
  clientName: '<script>alert(1)</script>"\' onload=x \u202Egnp.exe\u2066',
  clientId: 'https://evil.example/<b>.json',
  redirectUri: 'http://127.0.0.1:9/cb?x="><script>',
  serverName: 'tools',
  resource: 'https://gw/mcp/tools',
  scopes: ['tools.read', '<i>'],
  user: 'alice@example.com',
}

t.test('client-chosen text: escaped, no controls or direction overrides, cut short', async (t) => {
  const html = consentHtml(view, shownHost(view.redirectUri))
  t.notOk(/<script|<b>|<i>|onload=x"/.test(html.replace('<i>unnamed client</i>', '')), 'no markup of the client\'s')
  t.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39; onload=x \ufffdgnp.exe\ufffd'), 'escaped, overrides made visible')
  t.notOk(/[\u202a-\u202e\u2066-\u2069]/.test(html))
  t.ok(html.includes('name="handle" value="h&#34;andle"') && html.includes('name="csrf" value="c&#60;srf"'))
  t.match(html, /<p class="to"><strong>127\.0\.0\.1:9<\/strong><\/p>/)
  t.equal(shown('x'.repeat(500)), `${'x'.repeat(80)}…`, 'long names are cut')
  t.equal(shown('\u200bpay\u0000pal\u00ad'), '\ufffdpay\ufffdpal\u00ad')
  t.equal(shown('🙂'.repeat(81)), `${'🙂'.repeat(80)}…`, 'cut at characters, not UTF-16 halves')
  t.equal(shownHost('https://bücher.example:8443/cb'), 'xn--bcher-kva.example:8443', 'an IDN host in punycode')
  t.match(consentHtml({ ...view, clientName: undefined }, 'h'), /<i>unnamed client<\/i>/)
  t.match(consentHtml({ ...view, scopes: [] }, 'h'), /<dd><i>none<\/i><\/dd>/)
})

t.test('the page\'s headers', async (t) => {
  const app = Fastify()
  app.get('/', async (_request, reply) => await sendConsentPage(reply, view))
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-security-policy'], /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]{43}='; form-action 'self' http:\/\/127\.0\.0\.1:9; frame-ancestors 'none'; base-uri 'none'$/)
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  await app.close()
})

const login = { clientId: 'c', redirectUri: 'http://127.0.0.1/cb', clientState: undefined, codeChallenge: 'x', resource: 'r', scopes: [] }
const refusal = async (p: Promise<unknown>): Promise<unknown> => await p.then(() => undefined, (err: unknown) => err)

t.test('logins in progress: at most MAX_PENDING_PER_ADDRESS per address, a place freed when one is taken', async (t) => {
  const store = new MemoryStore()
  const pending = new PendingLogins(store, false)
  const states: string[] = []
  for (let i = 0; i < MAX_PENDING_PER_ADDRESS; i++) states.push((await pending.begin(login, { address: '203.0.113.7' })).state)
  const over = await refusal(pending.begin(login, { address: '203.0.113.7' }))
  t.ok(over instanceof OAuthError)
  t.match(over, { statusCode: 429, error: 'temporarily_unavailable', reason: 'too_many_pending_logins' })
  t.match((over as OAuthError).headers['retry-after'], /^(59\d|600)$/, 'Retry-After: until the newest login expires')
  t.equal(await refusal(pending.begin(login, { address: '::ffff:203.0.113.7' })) instanceof OAuthError, true, 'the same address IPv4-mapped')
  t.ok(await pending.begin(login, { address: '203.0.113.8' }), 'another address is not affected')
  t.ok(await pending.begin(login), 'an internal caller naming no address is not counted')
  t.ok(await pending.take(states[0] ?? ''))
  t.ok(await pending.begin(login, { address: '203.0.113.7' }), 'a taken login frees its place')
  t.ok(await refusal(pending.begin(login, { address: '203.0.113.7' })) instanceof OAuthError, 'one place only')
  t.equal(store.size, MAX_PENDING_PER_ADDRESS + 2 + 2, 'the logins (20 + two more), one count per address, nothing for the refusals')
})

t.test('IPv6 addresses count per /64', async (t) => {
  t.equal(addressBucket('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  t.equal(addressBucket('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
  t.equal(addressBucket('2001:DB8::1%eth0'), '2001:db8:0:0::/64')
  t.equal(addressBucket('::1'), '0:0:0:0::/64')
  t.equal(addressBucket('::ffff:192.0.2.1'), '192.0.2.1')
  t.equal(addressBucket('192.0.2.1'), '192.0.2.1')
  const pending = new PendingLogins(new MemoryStore(), false)
  for (let i = 0; i < MAX_PENDING_PER_ADDRESS; i++) await pending.begin(login, { address: `2001:db8:1:2::${i.toString(16)}` })
  t.ok(await refusal(pending.begin(login, { address: '2001:db8:1:2:abcd::9' })) instanceof OAuthError, 'the same /64 is one address')
  t.ok(await pending.begin(login, { address: '2001:db8:1:3::1' }), 'the next /64 is another')
})
