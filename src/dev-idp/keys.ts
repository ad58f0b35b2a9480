/**
 * The dev IdP's signing keys: generated at start, or read from a private JWKS (`signing.keysFile`).
 * The first key of the configured algorithm signs; every key is published (public parts only) and
 * accepted when an ID token comes back as a subject token.
 */
import { readFile } from 'node:fs/promises'
import {
  calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, SignJWT,
  type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload, type JWTVerifyGetKey,
} from 'jose'
import { ConfigError } from '../config/errors.ts'
import { isRecord, type SigningAlgorithm } from './config-schema.ts'

export interface SigningKeys {
  readonly alg: SigningAlgorithm
  /** the public JWKS served at /jwks */
  readonly jwks: JSONWebKeySet
  /** resolves the verification key of a JWT signed by this IdP */
  readonly verifyKey: JWTVerifyGetKey
  /** signs `claims` with the current key; `header` adds to (or overrides) `{alg, kid, typ}` */
  sign (claims: JWTPayload, typ: string, header?: Record<string, unknown>): Promise<string>
}

interface PrivateKey {
  readonly kid: string
  readonly key: CryptoKey
  readonly publicJwk: JWK
}

/** The public members of EC and RSA keys; anything else (private parts, `status`, …) is never published. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e']

export async function loadSigningKeys (alg: SigningAlgorithm, keysFile?: string): Promise<SigningKeys> {
  const keys = keysFile === undefined ? [await generate(alg)] : await readKeysFile(alg, keysFile)
  const [current] = keys
  if (current === undefined) throw new Error('no signing key')
  const jwks: JSONWebKeySet = { keys: keys.map((k) => k.publicJwk) }
  return {
    alg,
    jwks,
    verifyKey: createLocalJWKSet(jwks),
    async sign (claims, typ, header = {}) {
      return await new SignJWT(claims).setProtectedHeader({ alg, kid: current.kid, typ, ...header }).sign(current.key)
    },
  }
}

async function generate (alg: SigningAlgorithm): Promise<PrivateKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return await withPublicJwk(alg, privateKey, await exportJWK(publicKey), undefined)
}

async function withPublicJwk (alg: SigningAlgorithm, key: CryptoKey, jwk: JWK, kid: string | undefined): Promise<PrivateKey> {
  const publicJwk: JWK = Object.fromEntries(Object.entries(jwk).filter(([name]) => PUBLIC_MEMBERS.includes(name)))
  const id = kid ?? await calculateJwkThumbprint(publicJwk)
  return { kid: id, key, publicJwk: { ...publicJwk, kid: id, alg, use: 'sig' } }
}

/**
 * A private JWKS (`{"keys": [...]}`, e.g. from `portcullis keys generate`); keys of another
 * algorithm are skipped, a key without `d` is refused. The key with `status: current` signs (if
 * keys carry a status), else the first; all are published.
 */
async function readKeysFile (alg: SigningAlgorithm, path: string): Promise<PrivateKey[]> {
  const fail = (at: string, message: string): ConfigError => new ConfigError(path, [{ path: `signing.keysFile${at}`, message }])
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (error) {
    const reason = error instanceof SyntaxError ? 'is not JSON' : `cannot be read (${error instanceof Error && 'code' in error ? String(error.code) : 'unreadable'})`
    throw fail('', reason)
  }
  if (!isRecord(parsed) || !Array.isArray(parsed['keys'])) throw fail('', 'must be a JWKS: {"keys": [...]}')
  const keys: (PrivateKey & { status: string | undefined })[] = []
  for (const [i, item] of parsed['keys'].entries()) {
    if (!isRecord(item)) throw fail(`.keys[${i}]`, 'must be a JWK')
    if (keyAlgorithm(item) !== alg) continue
    if (typeof item['d'] !== 'string') throw fail(`.keys[${i}]`, 'must be a private key (has no d)')
    try {
      const jwk: JWK = item
      const key = await importJWK(jwk, alg, { extractable: false })
      if (!(key instanceof Uint8Array) && key.type === 'private') {
        const status = typeof item['status'] === 'string' ? item['status'] : undefined
        keys.push({ ...await withPublicJwk(alg, key, jwk, typeof item['kid'] === 'string' ? item['kid'] : undefined), status })
        continue
      }
    } catch { /* reported below */ }
    throw fail(`.keys[${i}]`, `is not a usable ${alg} private key`)
  }
  if (keys.length === 0) throw fail('', `has no ${alg} key (signing.alg)`)
  if (new Set(keys.map((key) => key.kid)).size !== keys.length) throw fail('', 'repeats a kid')
  if (!keys.some((key) => key.status !== undefined)) return keys
  const current = keys.filter((key) => key.status === 'current')
  if (current.length !== 1) throw fail('', `must have exactly one ${alg} key with status current (found ${current.length})`)
  return [...current, ...keys.filter((key) => key.status !== 'current')]
}

function keyAlgorithm (jwk: Record<string, unknown>): string | undefined {
  if (typeof jwk['alg'] === 'string') return jwk['alg']
  if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256') return 'ES256'
  if (jwk['kty'] === 'RSA') return 'RS256'
  return undefined
}
