import t from 'tap'
import { mock } from 'node:test'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { isPublicAddress } from '../../src/authorization-server/login/address-guard.ts'
import { AuthorizationCodes, type CodeGrant } from '../../src/authorization-server/login/codes.ts'
import { PendingLogins } from '../../src/authorization-server/login/pending-logins.ts'
import { isCodeVerifier, pkceMatches, s256 } from '../../src/authorization-server/login/pkce.ts'
import { redirectUriProblem, withParams } from '../../src/authorization-server/login/redirect-uri.ts'
import { SharedRevocationList } from '../../src/authorization-server/login/revocation.ts'
import { mapIdentityClaims } from '../../src/authorization-server/login/identity-claims.ts'

t.test('the SSRF guard admits only public unicast addresses', async (t) => {
  for (const address of ['93.184.215.14', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) t.ok(isPublicAddress(address), address)
  for (const address of ['127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '198.18.0.1', '::1', '::', 'fe80::1', 'fc00::1', 'fd12::1', 'ff02::1', '::ffff:127.0.0.1',
    '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2002:a00:1::', '2001:db8::1', 'localhost', '', 'not-an-ip']) {
    t.notOk(isPublicAddress(address), address)
  }
})

t.test('redirect URIs a client may register', async (t) => {
  const hosts = ['localhost', '127.0.0.1', 'app.example.com']
  t.equal(redirectUriProblem('http://127.0.0.1:3000/callback', hosts), undefined)
  t.equal(redirectUriProblem('http://localhost/cb?x=1', hosts), undefined)
  t.equal(redirectUriProblem('https://app.example.com/cb', hosts), undefined)
  t.equal(redirectUriProblem('https://APP.example.com/cb', hosts), undefined, 'hosts compare without case')
  t.equal(redirectUriProblem('http://app.example.com/cb', hosts), 'must be https unless the host is loopback')
  t.equal(redirectUriProblem('https://evil.example/cb', hosts), 'names a host this gateway does not allow for redirects')
  t.equal(redirectUriProblem('https://app.example.com.evil.example/cb', hosts), 'names a host this gateway does not allow for redirects')
  t.equal(redirectUriProblem('https://u@app.example.com/cb', hosts), 'must not contain credentials')
  t.equal(redirectUriProblem('https://app.example.com/cb#x', hosts), 'must not have a fragment')
  t.equal(redirectUriProblem('javascript:alert(1)', hosts), 'must be an http(s) URL')
  t.equal(redirectUriProblem('/relative', hosts), 'is not an absolute URL')
  t.equal(redirectUriProblem(`https://app.example.com/${'a'.repeat(3000)}`, hosts), 'is too long')
  t.equal(withParams('http://127.0.0.1/cb?keep=1', { code: 'c', state: undefined, iss: 'https://gw' }), 'http://127.0.0.1/cb?keep=1&code=c&iss=https%3A%2F%2Fgw')
})

t.test('PKCE S256', async (t) => {
  const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
  t.equal(s256(verifier), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'RFC 7636 appendix B')
  t.ok(pkceMatches(verifier, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'))
  t.notOk(pkceMatches(`${verifier}x`, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'))
  t.notOk(pkceMatches('short', s256('short')), 'a verifier under 43 characters is refused even if it hashes right')
  t.notOk(isCodeVerifier('a'.repeat(129)))
  t.ok(isCodeVerifier('a.b_c~d-'.repeat(6)))
})

const grant: CodeGrant = { clientId: 'c', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'x'.repeat(43), resource: 'https://gw/mcp/s', scopes: [], subject: 'u', idpIssuer: 'https://idp', claims: {} }

t.test('authorization codes: single use, replay remembered, tokens collected', async (t) => {
  const codes = new AuthorizationCodes(new MemoryStore(), { codeTtlMs: 60_000, rememberRedeemedMs: 60_000 })
  const code = await codes.issue(grant)
  t.match(code, /^[A-Za-z0-9_-]{43}$/)
  t.same(await codes.find(code), { grant, redeemed: false })
  t.equal(await codes.find('other'), undefined)
  t.ok(await codes.redeem(code))
  t.notOk(await codes.redeem(code), 'once')
  t.ok(await codes.recordToken(code, 'jti-1', 1))
  t.same(await codes.replayed(code), [{ jti: 'jti-1', expiresAt: 1 }])
  t.notOk(await codes.recordToken(code, 'jti-2', 2), 'a token recorded after a replay is to be revoked at once')
  // expiry on a mocked clock (the codes and the memory store both read Date.now): no sleep
  mock.timers.enable({ apis: ['Date'], now: Date.now() })
  try {
    const expiring = new AuthorizationCodes(new MemoryStore(), { codeTtlMs: 1_000, rememberRedeemedMs: 1_000 })
    const old = await expiring.issue(grant)
    mock.timers.tick(999)
    t.same(await expiring.find(old), { grant, redeemed: false }, 'found until its TTL is over')
    mock.timers.tick(1)
    t.equal(await expiring.find(old), undefined, 'expired at its TTL')
  } finally {
    mock.timers.reset()
  }
})

t.test('pending logins: once, and bound to the browser by a cookie', async (t) => {
  const pending = new PendingLogins(new MemoryStore(), true)
  const started = await pending.begin({ clientId: 'c', redirectUri: 'http://127.0.0.1/cb', clientState: undefined, codeChallenge: 'x', resource: 'r', scopes: [] })
  t.match(started.cookie, /^portcullis_login_[A-Za-z0-9_-]{16}=[A-Za-z0-9_-]{43}; Path=\/oauth\/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/)
  const pair = started.cookie.split(';')[0] ?? ''
  t.ok(pending.boundToBrowser(started.state, started.pending, `a=b; ${pair}`))
  t.notOk(pending.boundToBrowser(started.state, started.pending, undefined))
  t.notOk(pending.boundToBrowser(started.state, started.pending, pair.replace(/=.*/, '=forged')))
  t.same(await pending.take(started.state), started.pending)
  t.equal(await pending.take(started.state), undefined, 'a callback is answered once')
  t.match(pending.clearCookie(started.state), /Max-Age=0/)
})

t.test('revocation list and identity claims', async (t) => {
  const list = new SharedRevocationList(new MemoryStore())
  t.notOk(list.active)
  await list.revoke('j', Math.floor(Date.now() / 1000) + 60)
  t.ok(list.active)
  t.ok(list.isRevoked('j'))
  t.notOk(list.isRevoked('k'))
  t.same(mapIdentityClaims({ groups: ['a', 'b'], mail: 'x@y', n: 1, obj: { a: 1 }, mixed: ['a', 1] }, { groups: 'groups', email: 'mail', num: 'n', o: 'obj', m: 'mixed', absent: 'nope' }),
    { groups: ['a', 'b'], email: 'x@y', num: 1 })
})
