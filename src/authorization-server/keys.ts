import { readFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose'

export { SIGNING_ALGORITHMS, type KeyStatus, type SigningAlgorithm, type SigningKey, type SigningKeySet } from '../authn/signing-keys.ts'
import { SIGNING_ALGORITHMS, type KeyStatus, type SigningAlgorithm, type SigningKey, type SigningKeySet } from '../authn/signing-keys.ts'

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError'
}

/** Load the private JWKS written by `portcullis keys generate` (exactly one `current` key). */
export async function loadSigningKeys (path: string): Promise<SigningKeySet> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new SigningKeyError(`${path}: cannot read the signing keys (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new SigningKeyError(`${path}: not JSON`)
  }
  return await importKeySet(parsed, path)
}

export async function importKeySet (jwks: unknown, source: string): Promise<SigningKeySet> {
  const keys = (typeof jwks === 'object' && jwks !== null && 'keys' in jwks) ? jwks.keys : undefined
  if (!Array.isArray(keys) || keys.length === 0) throw new SigningKeyError(`${source}: expected {"keys": [...]}`)
  const imported: SigningKey[] = []
  const kids = new Set<string>()
  for (const [i, raw] of keys.entries()) {
    const where = `${source}: keys[${i}]`
    if (typeof raw !== 'object' || raw === null) throw new SigningKeyError(`${where}: not a JWK`)
    const jwk = raw as JWK & { status?: unknown }
    if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new SigningKeyError(`${where}: kid is required`)
    if (kids.has(jwk.kid)) throw new SigningKeyError(`${where}: duplicate kid ${jwk.kid}`)
    kids.add(jwk.kid)
    if (!SIGNING_ALGORITHMS.includes(jwk.alg as SigningAlgorithm)) throw new SigningKeyError(`${where}: alg must be one of ${SIGNING_ALGORITHMS.join(', ')}`)
    if (jwk.status !== 'current' && jwk.status !== 'next' && jwk.status !== 'retired') throw new SigningKeyError(`${where}: status must be current, next or retired`)
    if (typeof jwk.d !== 'string') throw new SigningKeyError(`${where}: a private key is required`)
    let privateKey: CryptoKey
    try {
      const key = await importJWK({ ...jwk, status: undefined } as JWK, jwk.alg)
      if (key instanceof Uint8Array) throw new Error('symmetric')
      privateKey = key
    } catch {
      throw new SigningKeyError(`${where}: not a usable ${String(jwk.alg)} private key`)
    }
    imported.push({ kid: jwk.kid, alg: jwk.alg as SigningAlgorithm, status: jwk.status, privateKey, publicJwk: publicPart(jwk) })
  }
  const current = imported.filter((k) => k.status === 'current')
  if (current.length !== 1 || current[0] === undefined) throw new SigningKeyError(`${source}: exactly one key must have status current (found ${current.length})`)
  return keySet(current[0], imported, false)
}

/** A key that lives as long as this process: tokens die with it. Only with a loud warning. */
export async function ephemeralKeySet (alg: SigningAlgorithm = 'ES256'): Promise<SigningKeySet> {
  const jwk = await generatePrivateJwk(alg, 'current')
  return { ...(await importKeySet({ keys: [jwk] }, '<ephemeral>')), ephemeral: true }
}

export async function generatePrivateJwk (alg: SigningAlgorithm, status: KeyStatus): Promise<JWK & { status: KeyStatus }> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) })
  const jwk = await exportJWK(privateKey)
  return { ...jwk, kid: randomUUID(), alg, use: 'sig', status }
}

function keySet (current: SigningKey, all: SigningKey[], ephemeral: boolean): SigningKeySet {
  return Object.freeze({
    current,
    verificationKeys: Object.freeze(all),
    publicJwks: Object.freeze({ keys: Object.freeze(all.map((k) => k.publicJwk)) }),
    ephemeral,
  })
}

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'status'])

function publicPart (jwk: JWK): JWK {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(jwk)) if (!PRIVATE_MEMBERS.has(name)) out[name] = value
  return Object.freeze({ ...out, use: 'sig' }) as JWK
}
