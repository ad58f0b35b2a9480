import { JWT_BEARER, type EmaStack } from './ema.ts'

/**
 * The dev IdP's two users as the policy sees them: alice (group eng, scopes tools.read
 * tools.write), bob (group sales, scope tools.read) — the same identities as the dev IdP policy
 * of helpers/ema.ts, for servers that policy does not list.
 */
export const USERS = {
  alice: { sub: 'alice-sub', email: 'alice@example.com', groups: ['eng'], scope: 'tools.read tools.write' },
  bob: { sub: 'bob-sub', email: 'bob@example.com', groups: ['sales'], scope: 'tools.read' },
} as const

export type User = keyof typeof USERS

/**
 * A gateway access token for `user` at `server` (any server of the stack's gateway): an ID-JAG
 * signed with the dev IdP's real key, carrying the user's identity claims, redeemed at the
 * gateway's real token endpoint. `scope` narrows the request (default: all the user may have).
 */
export async function policyToken (stack: EmaStack, user: User, server: string, scope?: string): Promise<string> {
  const u = USERS[user]
  const assertion = await stack.mintIdJag({
    sub: u.sub,
    email: u.email,
    groups: [...u.groups],
    scope: u.scope,
    resource: `${stack.issuer}/mcp/${server}`,
  })
  const { status, body } = await stack.redeem({ grant_type: JWT_BEARER, assertion, ...(scope === undefined ? {} : { scope }) })
  if (status !== 200 || typeof body.access_token !== 'string') throw new Error(`redeem for ${user}@${server} failed: ${status} ${JSON.stringify(body)}`)
  return body.access_token
}
