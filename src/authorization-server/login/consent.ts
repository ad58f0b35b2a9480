import { timingSafeEqual } from 'node:crypto'
import type { Store } from '../../store/store.ts'
import { failingClosed, parseStored } from '../shared-state.ts'
import type { CodeGrant } from './codes.ts'
import { readCookie } from './pending-logins.ts'
import { digest, randomToken } from './pkce.ts'

export const CONSENT_PATH = '/oauth/consent'
/** how long the consent page may be answered */
const ASK_TTL_MS = 5 * 60_000

/** A finished IdP login waiting for the user's Allow or Deny: the code it would issue, and what the page shows. */
export interface ConsentAsk {
  readonly grant: CodeGrant
  /** the client's `state`, echoed in the redirect */
  readonly clientState: string | undefined
  readonly clientName: string | undefined
  /** who signed in, as the page names them */
  readonly user: string
}

interface StoredAsk extends ConsentAsk {
  /** SHA-256 of the form's CSRF token and of the browser cookie's value */
  readonly csrfDigest: string
  readonly browserBinding: string
}

export interface AskedConsent {
  /** the key of the waiting login, a hidden form field */
  readonly handle: string
  readonly csrf: string
  /** the `Set-Cookie` binding it to this browser */
  readonly cookie: string
}

export interface ConsentOptions {
  /** how long an Allow is remembered (0: never) */
  readonly rememberSeconds: number
  /** `authorization.clients`: the operator registered them, so they never see the page */
  readonly configuredClients: ReadonlyMap<string, unknown>
  readonly secureCookies: boolean
}

/**
 * The consent of design §5, all in the shared store (the page may be answered at any replica):
 * waiting logins under the SHA-256 of a random handle for five minutes, answered once (GETDEL),
 * each bound to a CSRF token and to a cookie of the browser that finished the IdP login; and
 * the Allows remembered per IdP, user, client, redirect URI, resource and scopes.
 */
export class Consents {
  readonly #store: Store
  readonly #opts: ConsentOptions

  constructor (store: Store, opts: ConsentOptions) {
    this.#store = failingClosed(store)
    this.#opts = opts
  }

  /** Only clients the operator did not configure (dynamic, metadata document) are asked about. */
  required (clientId: string): boolean {
    return !this.#opts.configuredClients.has(clientId)
  }

  async remembered (grant: CodeGrant): Promise<boolean> {
    if (this.#opts.rememberSeconds === 0) return false
    return await this.#store.get(rememberKey(grant)) !== undefined
  }

  async remember (grant: CodeGrant): Promise<void> {
    if (this.#opts.rememberSeconds === 0) return
    await this.#store.set(rememberKey(grant), '1', this.#opts.rememberSeconds * 1000)
  }

  async ask (ask: ConsentAsk): Promise<AskedConsent> {
    const handle = randomToken()
    const csrf = randomToken()
    const binding = randomToken()
    const stored: StoredAsk = { ...ask, csrfDigest: digest(csrf), browserBinding: digest(binding) }
    if (!await this.#store.setIfAbsent(askKey(handle), JSON.stringify(stored), ASK_TTL_MS)) throw new Error('a fresh consent handle collided')
    return { handle, csrf, cookie: this.#cookie(handle, binding, ASK_TTL_MS / 1000) }
  }

  /**
   * The waiting login, if `csrf` and the browser's cookie are the ones it was given — not yet
   * consumed, so a forged answer does not spend the real one. Why not, otherwise.
   */
  async find (handle: string, csrf: string, cookieHeader: string | undefined): Promise<ConsentAsk | 'unknown' | 'csrf_mismatch' | 'browser_mismatch'> {
    const value = await this.#store.get(askKey(handle))
    if (value === undefined) return 'unknown'
    const stored = parseStored(value, isStoredAsk)
    if (!sameDigest(csrf, stored.csrfDigest)) return 'csrf_mismatch'
    const cookie = readCookie(cookieHeader, cookieName(handle))
    if (cookie === undefined || !sameDigest(cookie, stored.browserBinding)) return 'browser_mismatch'
    return { grant: stored.grant, clientState: stored.clientState, clientName: stored.clientName, user: stored.user }
  }

  /** Consume it: true for exactly one answer, at any replica. */
  async take (handle: string): Promise<boolean> {
    return await this.#store.take(askKey(handle)) !== undefined
  }

  clearCookie (handle: string): string {
    return this.#cookie(handle, '', 0)
  }

  #cookie (handle: string, value: string, maxAgeSeconds: number): string {
    // Strict: only our own page's form carries it; Path: sent nowhere else.
    return `${cookieName(handle)}=${value}; Path=${CONSENT_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${this.#opts.secureCookies ? '; Secure' : ''}`
  }
}

function askKey (handle: string): string {
  return `consent-ask:${digest(handle)}`
}

/** The page showed where the code goes, so an Allow covers that redirect URI too. */
function rememberKey (grant: CodeGrant): string {
  return `consent:${digest(JSON.stringify([grant.idpIssuer, grant.subject, grant.clientId, grant.redirectUri, grant.resource, [...grant.scopes].sort()]))}`
}

function cookieName (handle: string): string {
  return `portcullis_consent_${digest(handle).slice(0, 16)}`
}

function sameDigest (value: string, expected: string): boolean {
  return timingSafeEqual(Buffer.from(digest(value)), Buffer.from(expected))
}

function isStoredAsk (value: unknown): value is StoredAsk {
  if (typeof value !== 'object' || value === null) return false
  const ask = value as Partial<Record<keyof StoredAsk, unknown>>
  return typeof ask.grant === 'object' && ask.grant !== null && typeof ask.user === 'string' && typeof ask.csrfDigest === 'string' &&
    typeof ask.browserBinding === 'string' && (ask.clientState === undefined || typeof ask.clientState === 'string') &&
    (ask.clientName === undefined || typeof ask.clientName === 'string')
}
