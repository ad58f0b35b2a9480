import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

/**
 * What a session id carries (design §7): any replica can serve the session from the id alone,
 * with no store round trip on the MCP request path.
 */
export interface SessionState {
  /** the configured server the session was opened on */
  readonly server: string
  /** binding of the principal that opened it (a hash of its key: the id reveals nothing) */
  readonly principal: string
  /** Streamable HTTP upstreams: the upstream's own Mcp-Session-Id, which only the upstream sees */
  readonly upstream: string | undefined
  /** bridged upstreams: the advertise URL of the replica that holds the process or stream */
  readonly owner: string | undefined
}

/** The visible-ASCII alphabet of a sealed id (base64url) and a bound on its length. */
const SEALED = /^[A-Za-z0-9_-]{40,2048}$/
const NONCE_BYTES = 12
const TAG_BYTES = 16

/**
 * Session ids sealed with AES-256-GCM (authenticated encryption) under a key every replica shares:
 * a client can neither read nor forge one, and an id sealed for one server does not open on
 * another (the server name is the additional authenticated data). A fresh random nonce per id.
 * Opened ids are remembered in a small cache, so a session's later requests cost a map lookup.
 */
export class SessionSealer {
  readonly #keys: readonly Buffer[]
  readonly #opened = new LRUCache<string, SessionState>({ max: 10_000 })

  constructor (keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error('no session sealing key')
    this.#keys = keys
  }

  seal (state: SessionState): string {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#keys[0]!, nonce)
    cipher.setAAD(aad(state.server))
    const plain = Buffer.from(JSON.stringify([state.principal, state.upstream ?? null, state.owner ?? null]), 'utf8')
    const sealed = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString('base64url')
    this.#opened.set(sealed, state)
    return sealed
  }

  /** The state sealed in `id` for `server`, or undefined for anything that is not such an id. */
  open (id: string, server: string): SessionState | undefined {
    const cached = this.#opened.get(id)
    if (cached !== undefined) return cached.server === server ? cached : undefined
    if (!SEALED.test(id)) return undefined
    const bytes = Buffer.from(id, 'base64url')
    if (bytes.length < NONCE_BYTES + TAG_BYTES + 2) return undefined
    const nonce = bytes.subarray(0, NONCE_BYTES)
    const tag = bytes.subarray(bytes.length - TAG_BYTES)
    const body = bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)
    for (const key of this.#keys) {
      const plain = decrypt(key, nonce, body, tag, server)
      if (plain === undefined) continue
      const state = parseState(plain, server)
      if (state !== undefined) this.#opened.set(id, state)
      return state
    }
    return undefined
  }
}

/** Principals are cached per token (authn/verify-access-token.ts): each one's key is hashed once. */
const bindings = new WeakMap<object, string>()

/** The principal binding kept in a session id: 16 bytes of SHA-256 of the principal's key. */
export function principalBinding (principal: { readonly key: string }): string {
  let binding = bindings.get(principal)
  if (binding === undefined) {
    binding = createHash('sha256').update(`portcullis principal\n${principal.key}`, 'utf8').digest('base64url').slice(0, 22)
    bindings.set(principal, binding)
  }
  return binding
}

function aad (server: string): Buffer {
  return Buffer.from(`portcullis session v1\n${server}`, 'utf8')
}

function decrypt (key: Buffer, nonce: Buffer, body: Buffer, tag: Buffer, server: string): Buffer | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(aad(server))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()])
  } catch {
    return undefined
  }
}

function parseState (plain: Buffer, server: string): SessionState | undefined {
  let value: unknown
  try {
    value = JSON.parse(plain.toString('utf8'))
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 3) return undefined
  const [principal, upstream, owner] = value as unknown[]
  if (typeof principal !== 'string') return undefined
  if (upstream !== null && typeof upstream !== 'string') return undefined
  if (owner !== null && typeof owner !== 'string') return undefined
  return { server, principal, upstream: upstream ?? undefined, owner: owner ?? undefined }
}
