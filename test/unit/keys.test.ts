// Signing keys: `portcullis keys generate` writes a loadable private JWKS, `keys rotate` moves
// next→current→retired, and the loader refuses what it can't safely sign with.
import t from 'tap'
import { mkdtemp, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { runKeys } from '../../src/cli/keys.ts'
import { importKeySet, loadSigningKeys } from '../../src/authorization-server/keys.ts'

function io (): { io: Parameters<typeof runKeys>[1], out: () => string, err: () => string } {
  let out = ''
  let err = ''
  const sink = (append: (s: string) => void): Writable => new Writable({ write (c: Buffer, _e, cb) { append(c.toString()); cb() } })
  return { io: { stdout: sink((s) => { out += s }), stderr: sink((s) => { err += s }), env: {} }, out: () => out, err: () => err }
}

t.test('generate, load, rotate twice', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-keys-'))
  const file = join(dir, 'keys.json')
  const gen = io()
  t.equal(await runKeys(['generate'], gen.io), 0)
  await writeFile(file, gen.out())
  const first = await loadSigningKeys(file)
  t.equal(first.current.alg, 'ES256')
  t.equal(first.verificationKeys.length, 2, 'a current and a next key')
  t.notOk(first.publicJwks.keys.some((k) => 'd' in k), 'the published set holds no private member')
  const nextKid = first.verificationKeys.find((k) => k.status === 'next')?.kid

  t.equal(await runKeys(['rotate', '--file', file], io().io), 0)
  const second = await loadSigningKeys(file)
  t.equal(second.current.kid, nextKid, 'next became current')
  t.ok(second.verificationKeys.some((k) => k.kid === first.current.kid && k.status === 'retired'), 'current became retired and is still published')
  t.equal(second.verificationKeys.filter((k) => k.status === 'next').length, 1, 'a new next key')

  t.equal(await runKeys(['rotate', '--file', file], io().io), 0)
  const third = await loadSigningKeys(file)
  t.notOk(third.verificationKeys.some((k) => k.kid === first.current.kid), 'keys retired two rotations ago are dropped')
  t.match(JSON.parse(await readFile(file, 'utf8')), { keys: [{ status: 'retired' }, { status: 'current' }, { status: 'next' }] })
})

t.test('RS256 keys', async (t) => {
  const gen = io()
  t.equal(await runKeys(['generate', '--alg', 'RS256'], gen.io), 0)
  const set = await importKeySet(JSON.parse(gen.out()), '<test>')
  t.equal(set.current.alg, 'RS256')
})

t.test('bad key files are refused with a reason', async (t) => {
  const gen = io()
  await runKeys(['generate'], gen.io)
  const good = JSON.parse(gen.out()) as { keys: Array<Record<string, unknown>> }
  const cases: Array<[string, unknown, RegExp]> = [
    ['not a JWKS', { nope: 1 }, /expected \{"keys"/],
    ['no current key', { keys: good.keys.map((k) => ({ ...k, status: 'next' })) }, /exactly one key must have status current/],
    ['two current keys', { keys: good.keys.map((k) => ({ ...k, status: 'current' })) }, /exactly one key/],
    ['a public key only', { keys: [{ ...good.keys[0], d: undefined }] }, /private key is required/],
    ['HS256', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h', alg: 'HS256', status: 'current' }] }, /alg must be one of/],
    ['missing kid', { keys: [{ ...good.keys[0], kid: undefined }] }, /kid is required/],
    ['duplicate kid', { keys: [good.keys[0], { ...good.keys[1], kid: good.keys[0]?.kid }] }, /duplicate kid/],
    ['bad status', { keys: [{ ...good.keys[0], status: 'active' }] }, /status must be/],
  ]
  for (const [name, jwks, message] of cases) {
    await t.rejects(importKeySet(JSON.parse(JSON.stringify(jwks)), '<test>'), { message }, name)
  }
  const bad = io()
  t.equal(await runKeys(['generate', '--alg', 'HS256'], bad.io), 1)
  t.match(bad.err(), /--alg must be one of/)
  t.equal(await runKeys(['frobnicate'], io().io), 2)
})
