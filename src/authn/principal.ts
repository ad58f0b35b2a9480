/**
 * Who is calling. Built by the authentication stage; read by the session table (sessions are
 * bound to the principal that opened them), the header templates and, later, the tool policy.
 */
export interface Principal {
  /** stable key for binding sessions: `{issuer}#{subject}`, or `anonymous` */
  readonly key: string
  readonly subject: string
  readonly issuer: string | undefined
  readonly clientId: string | undefined
  readonly scopes: readonly string[]
  /** identity claims mapped from the ID-JAG (groups, email, tenant …) */
  readonly claims: Readonly<Record<string, unknown>>
  readonly anonymous: boolean
  /** the ID-JAG `jti` that led to the access token, for the audit trail */
  readonly assertionJti: string | undefined
  /** the access token's own `jti` (what a revocation names); absent for anonymous and synthetic principals */
  readonly tokenJti?: string
}

export const ANONYMOUS: Principal = Object.freeze({
  key: 'anonymous',
  subject: 'anonymous',
  issuer: undefined,
  clientId: undefined,
  scopes: Object.freeze([]) as readonly string[],
  claims: Object.freeze({}),
  anonymous: true,
  assertionJti: undefined,
})
