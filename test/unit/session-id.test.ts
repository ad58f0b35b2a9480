// Sealed session ids (session/sealed-session-id.ts) and replica-to-replica signatures
// (session/peer-auth.ts): what opens, and a hostile table of what must not.
import t from 'tap'
import { SessionSealer, principalBinding } from '../../src/session/sealed-session-id.ts'
import { PeerAuth } from '../../src/session/peer-auth.ts'
import { sessionKeysFromEnv } from '../../src/session/session-keys.ts'

const KEY = 'k'.repeat(40)
const keys = sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: KEY })
const state = { server: 'github', principal: principalBinding({ key: 'https://idp#alice' }), upstream: 'upstream-session-1', owner: undefined }

t.test('a sealed id opens on every replica with the same key, for its server only', async (t) => {
  const id = new SessionSealer(keys.sealing).seal(state)
  t.match(id, /^[A-Za-z0-9_-]+$/, 'visible ASCII')
  t.notOk(id.includes('upstream-session-1'), 'the upstream id is not readable in it')
  const replica = new SessionSealer(sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: KEY }).sealing)
  t.same(replica.open(id, 'github'), state)
  t.equal(replica.open(id, 'gitlab'), undefined, 'sealed for another server')
  t.equal(new SessionSealer(keys.sealing).open(id, 'gitlab'), undefined, 'the cache does not cross servers either')
  const bridged = { ...state, upstream: undefined, owner: 'http://10.0.0.7:8080' }
  t.same(replica.open(new SessionSealer(keys.sealing).seal(bridged), 'github'), bridged)
  t.not(new SessionSealer(keys.sealing).seal(state), new SessionSealer(keys.sealing).seal(state), 'a fresh nonce per id')
})

t.test('key rotation: ids sealed under the previous key still open; without the key nothing does', async (t) => {
  const old = new SessionSealer(keys.sealing).seal(state)
  const rotated = sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: 'n'.repeat(40), PORTCULLIS_SESSION_KEY_PREVIOUS: KEY })
  t.same(new SessionSealer(rotated.sealing).open(old, 'github'), state)
  t.equal(new SessionSealer(sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: 'n'.repeat(40) }).sealing).open(old, 'github'), undefined)
  const ephemeral = sessionKeysFromEnv({})
  t.ok(ephemeral.ephemeral)
  t.equal(new SessionSealer(ephemeral.sealing).open(old, 'github'), undefined)
  t.ok(sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: 'short' }).ephemeral, 'a key under 32 characters is not used')
})

t.test('hostile ids are not sessions', async (t) => {
  const sealer = new SessionSealer(keys.sealing)
  const id = sealer.seal(state)
  const bytes = Buffer.from(id, 'base64url')
  const flipped = (i: number): string => { const b = Buffer.from(bytes); b[i] = b[i]! ^ 1; return b.toString('base64url') }
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['a UUID (an upstream\'s plain id)', '1b4e28ba-2fa1-11d2-883f-0016d3cca427'],
    ['the upstream id itself', 'upstream-session-1'],
    ['truncated', id.slice(0, -4)],
    ['one character more', `${id}A`],
    ['nonce bit flipped', flipped(0)],
    ['ciphertext bit flipped', flipped(14)],
    ['tag bit flipped', flipped(bytes.length - 1)],
    ['padding added', `${id}==`],
    ['a standard-base64 character (+)', `+${id.slice(1)}`],
    ['a standard-base64 character (/)', `${id.slice(0, -1)}/`],
    ['spaces', ` ${id} `],
    ['non-ASCII', `${id.slice(0, 10)}é${id.slice(11)}`],
    ['very long', 'A'.repeat(5000)],
    ['nonce and tag only', bytes.subarray(0, 28).toString('base64url')],
    ['all zeros', Buffer.alloc(64).toString('base64url')],
  ]
  for (const [name, value] of cases) t.equal(new SessionSealer(keys.sealing).open(value, 'github'), undefined, name)
})

t.test('principal bindings differ per principal and hide the key', async (t) => {
  const a = principalBinding({ key: 'https://idp#alice' })
  t.not(a, principalBinding({ key: 'https://idp#bob' }))
  t.not(a, principalBinding({ key: 'https://other-idp#alice' }))
  t.equal(a, principalBinding({ key: 'https://idp#alice' }))
  t.notOk(a.includes('alice'))
})

t.test('peer signatures: only a fresh signature of exactly this request by a replica verifies', async (t) => {
  const peer = new PeerAuth(keys.peer)
  const request = { method: 'POST', server: 'stdio', sessionId: 'sealed-id', body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' }
  const now = Date.now()
  const header = peer.sign(request, now)
  t.ok(new PeerAuth(sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: KEY }).peer).verify(header, request, now), 'another replica verifies it')
  const cases: Array<[string, string | undefined, typeof request, number]> = [
    ['no header', undefined, request, now],
    ['empty', '', request, now],
    ['another method', header, { ...request, method: 'DELETE' }, now],
    ['another server', header, { ...request, server: 'sse' }, now],
    ['another session', header, { ...request, sessionId: 'other' }, now],
    ['another body', header, { ...request, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}' }, now],
    ['31 s later (replay window over)', header, request, now + 31_000],
    ['31 s earlier (clock ahead)', header, request, now - 31_000],
    ['garbage', 'Bearer abc', request, now],
    ['signature missing', `t=${Math.floor(now / 1000)}`, request, now],
    ['signature of another length', `t=${Math.floor(now / 1000)},s=abc`, request, now],
    ['a client\'s token in its place', `t=${Math.floor(now / 1000)},s=${'A'.repeat(43)}`, request, now],
    ['time tampered', header.replace(/t=(\d+)/, (_m, s: string) => `t=${Number(s) + 1}`), request, now],
  ]
  for (const [name, value, req, at] of cases) t.notOk(peer.verify(value, req, at), name)
  const stranger = new PeerAuth(sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: 'x'.repeat(40) }).peer)
  t.notOk(peer.verify(stranger.sign(request, now), request, now), 'signed with another key')
  const rotated = new PeerAuth(sessionKeysFromEnv({ PORTCULLIS_SESSION_KEY: 'x'.repeat(40), PORTCULLIS_SESSION_KEY_PREVIOUS: KEY }).peer)
  t.ok(rotated.verify(header, request, now), 'a replica already on the new key verifies one still on the old')
})

t.test('ended sessions: refused here at once and at another replica, in bounded memory', async (t) => {
  const { MemoryStore } = await import('../../src/store/memory-store.ts')
  const { Sessions } = await import('../../src/session/sessions.ts')
  const store = new MemoryStore()
  const log = { warn: () => {} }
  const here = new Sessions(keys, store, log)
  const there = new Sessions(keys, store, log)
  const id = here.sealer.seal(state)
  t.notOk(here.ended(id))
  here.end(id)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(here.ended(id), 'at once here')
  t.ok(there.ended(id), 'and at a replica that heard the broadcast')
  t.notOk(there.ended(`${id}x`), 'another id is not ended')
  for (let i = 0; i < 100_050; i++) here.end(`s${i}`)
  t.equal(here.endedCount, 100_000, 'a client ending sessions in a loop fills at most 100,000 entries')
  t.ok(here.ended('s100049'), 'the newest are kept')
  t.notOk(here.ended('s0'), 'the oldest made room')
})
