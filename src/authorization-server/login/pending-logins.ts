import { timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { Store } from '../../store/store.ts'
import { OAuthError } from '../errors.ts'
import { failingClosed, parseStored, ttlUntil } from '../shared-state.ts'
import { digest, randomToken } from './pkce.ts'

/** A login in progress at the IdP: what the client asked for, and the secrets of our own OIDC request. */
export interface PendingLogin {
  readonly clientId: string
  readonly redirectUri: string
  readonly clientState: string | undefined
  readonly codeChallenge: string
  readonly resource: string
  readonly scopes: readonly string[]
  /** the client's registered name, when its record has one (the consent page shows it) */
  readonly clientName?: string
  /** our OIDC `nonce` and PKCE verifier towards the IdP */
  readonly nonce: string
  readonly verifier: string
  /** SHA-256 of the value of the cookie that ties the login to the browser that started it */
  readonly browserBinding: string
  /** the store key of the per-address count this login holds a place in */
  readonly addressKey?: string
}

export interface StartedLogin {
  /** our `state` towards the IdP: the key of the pending login */
  readonly state: string
  /** the `Set-Cookie` value that binds it to this browser */
  readonly cookie: string
}

export const CALLBACK_PATH = '/oauth/callback'
/** Time enough for a real sign-in at the IdP (password reset, MFA enrolment); the per-address bound, not this, caps the store. */
const LOGIN_TTL_MS = 10 * 60_000
/** logins in progress at once from one client address (IPv6: one /64) */
export const MAX_PENDING_PER_ADDRESS = 20
const COUNT_ATTEMPTS = 8

/** The per-address count: how many logins hold a place, and when the last of them expires (epoch ms). */
interface AddressCount {
  readonly n: number
  readonly until: number
}

/**
 * Logins between `/oauth/authorize` and `/oauth/callback`, in the shared store under the SHA-256
 * of our `state` (the IdP may send the browser back to any replica), each usable once — taken
 * with GETDEL, so only one replica answers a callback — and for ten minutes. A cookie scoped to
 * the callback path binds each to the browser that started it: a callback replayed or forged
 * from elsewhere lacks it (the store keeps only the cookie's digest). Each client address may
 * hold at most MAX_PENDING_PER_ADDRESS of them at once (a count in the store, given back when a
 * login is taken, expiring with the newest login), so a flood from one address neither fills
 * the store nor touches the logins of anyone else.
 */
export class PendingLogins {
  readonly #store: Store
  readonly #secureCookies: boolean

  constructor (store: Store, secureCookies: boolean) {
    this.#store = failingClosed(store)
    this.#secureCookies = secureCookies
  }

  /**
   * Start a login for the browser at `address` (request.ip); past the address's bound, an
   * OAuthError with status 429 and Retry-After. Without an address (internal callers) nothing is counted.
   */
  async begin (login: Omit<PendingLogin, 'nonce' | 'verifier' | 'browserBinding' | 'addressKey'>, from: { readonly address?: string } = {}): Promise<StartedLogin & { readonly pending: PendingLogin }> {
    const addressKey = from.address === undefined ? undefined : countKey(from.address)
    if (addressKey !== undefined) await this.#holdPlace(addressKey)
    const state = randomToken()
    const binding = randomToken()
    const pending: PendingLogin = { ...login, nonce: randomToken(), verifier: randomToken(), browserBinding: digest(binding), ...(addressKey === undefined ? {} : { addressKey }) }
    if (!await this.#store.setIfAbsent(loginKey(state), JSON.stringify(pending), LOGIN_TTL_MS)) throw new Error('a fresh login state collided')
    return { state, pending, cookie: this.#cookie(state, binding, LOGIN_TTL_MS / 1000) }
  }

  /** The pending login for `state`, removed in the same step: a callback is answered once, by one replica. */
  async take (state: string): Promise<PendingLogin | undefined> {
    const value = await this.#store.take(loginKey(state))
    if (value === undefined) return undefined
    const login = parseStored(value, isPendingLogin)
    if (login.addressKey !== undefined) await this.#givePlaceBack(login.addressKey)
    // JSON drops an absent client state; give it back its own member.
    return { ...login, clientState: login.clientState }
  }

  /** One more login for the address, if it has room: read, compare-and-set; a count lost to contention counts as full. */
  async #holdPlace (key: string): Promise<void> {
    for (let attempt = 0; attempt < COUNT_ATTEMPTS; attempt++) {
      const value = await this.#store.get(key)
      const count = value === undefined ? undefined : parseStored(value, isAddressCount)
      if (count !== undefined && count.n >= MAX_PENDING_PER_ADDRESS) throw tooManyLogins(count.until)
      const next = JSON.stringify({ n: (count?.n ?? 0) + 1, until: Date.now() + LOGIN_TTL_MS })
      const done = value === undefined
        ? await this.#store.setIfAbsent(key, next, LOGIN_TTL_MS)
        : await this.#store.compareAndSet(key, value, next, LOGIN_TTL_MS)
      if (done) return
    }
    throw tooManyLogins(Date.now() + 1000)
  }

  /** A finished login frees its place; the count keeps its expiry. Best effort: it expires anyway. */
  async #givePlaceBack (key: string): Promise<void> {
    for (let attempt = 0; attempt < COUNT_ATTEMPTS; attempt++) {
      const value = await this.#store.get(key)
      if (value === undefined) return
      const count = parseStored(value, isAddressCount)
      if (count.n <= 0) return
      if (await this.#store.compareAndSet(key, value, JSON.stringify({ ...count, n: count.n - 1 }), ttlUntil(count.until))) return
    }
  }

  /** Whether the request's cookies carry the binding of the login started under `state`. */
  boundToBrowser (state: string, login: PendingLogin, cookieHeader: string | undefined): boolean {
    const value = readCookie(cookieHeader, cookieName(state))
    if (value === undefined) return false
    return timingSafeEqual(Buffer.from(digest(value)), Buffer.from(login.browserBinding))
  }

  /** The `Set-Cookie` that removes the binding once the callback is answered. */
  clearCookie (state: string): string {
    return this.#cookie(state, '', 0)
  }

  #cookie (state: string, value: string, maxAgeSeconds: number): string {
    return `${cookieName(state)}=${value}; Path=${CALLBACK_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${this.#secureCookies ? '; Secure' : ''}`
  }
}

function loginKey (state: string): string {
  return `login:${digest(state)}`
}

function countKey (address: string): string {
  return `login-address:${digest(addressBucket(address))}`
}

/** The unit the bound counts: an IPv4 address (also when IPv4-mapped), or an IPv6 address's /64 (what one host or household gets). */
export function addressBucket (address: string): string {
  const ip = address.replace(/%.*$/, '')
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip)
  if (mapped?.[1] !== undefined) return mapped[1]
  if (isIP(ip) !== 6) return ip
  const [head = '', tail] = ip.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`
}

function tooManyLogins (untilMs: number): OAuthError {
  const seconds = Math.max(1, Math.ceil((untilMs - Date.now()) / 1000))
  return new OAuthError('temporarily_unavailable', 'Too many sign-ins are in progress from this address; try again later', 'too_many_pending_logins',
    { statusCode: 429, headers: { 'retry-after': String(seconds) } })
}

function isAddressCount (value: unknown): value is AddressCount {
  if (typeof value !== 'object' || value === null) return false
  const count = value as Partial<Record<keyof AddressCount, unknown>>
  return typeof count.n === 'number' && typeof count.until === 'number'
}

function isPendingLogin (value: unknown): value is PendingLogin {
  if (typeof value !== 'object' || value === null) return false
  const login = value as Partial<Record<keyof PendingLogin, unknown>>
  return ['clientId', 'redirectUri', 'codeChallenge', 'resource', 'nonce', 'verifier', 'browserBinding'].every((name) => typeof login[name as keyof PendingLogin] === 'string') &&
    (login.clientState === undefined || typeof login.clientState === 'string') && Array.isArray(login.scopes) &&
    (login.clientName === undefined || typeof login.clientName === 'string') && (login.addressKey === undefined || typeof login.addressKey === 'string')
}

/** One cookie per login, so two logins in one browser do not overwrite each other. */
function cookieName (state: string): string {
  return `portcullis_login_${digest(state).slice(0, 16)}`
}

/** The value of cookie `name` in a Cookie header. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
