import t from 'tap'
import { parseDevIdpConfig } from '../../src/dev-idp/config.ts'
import { OAuthError } from '../../src/dev-idp/oauth.ts'
import { decide, type GrantRequest } from '../../src/dev-idp/policy.ts'

const config = parseDevIdpConfig(`
users:
  - { username: alice, password: a, email: alice@example.com, groups: [eng] }
  - { username: bob, password: b, email: bob@example.com, groups: [sales] }
  - { username: carol, password: c, email: carol@example.com, groups: [eng, ops] }
clients:
  - { clientId: app, secret: s }
  - { clientId: cli, secret: s }
policy:
  - { audience: "https://gw.example.com", resources: ["https://gw.example.com/mcp/a", "https://gw.example.com/mcp/b"], groups: [eng], scopes: [read, write] }
  - { audience: "https://gw.example.com", resources: ["https://gw.example.com/mcp/a"], groups: [sales], scopes: [read] }
  - { audience: "https://gw.example.com", resources: ["https://gw.example.com/mcp/a"], groups: [ops], scopes: [admin] }
  - { audience: "https://gw.example.com/", resources: ["https://gw.example.com/mcp/c"], users: [carol], clients: [cli], scopes: [] }
`, { source: '<policy>' })

const [alice, bob, carol] = config.users
const [app, cli] = config.clients
if (alice === undefined || bob === undefined || carol === undefined || app === undefined || cli === undefined) throw new Error('fixture')
const A = 'https://gw.example.com/mcp/a'

function refusal (request: GrantRequest): string {
  try {
    decide(config.policy, request)
  } catch (error) {
    if (error instanceof OAuthError) return error.error
    throw error
  }
  return 'granted'
}

t.test('grants: the pair, and scopes narrowed to the policy', async (t) => {
  t.same(decide(config.policy, { audience: 'https://gw.example.com', resource: A, user: alice, client: app }),
    { audience: 'https://gw.example.com', resource: A, scopes: ['read', 'write'] }, 'all policy scopes when none are requested')
  t.same(decide(config.policy, { audience: 'https://gw.example.com', resource: A, scopes: ['write', 'delete'], user: alice, client: app }).scopes,
    ['write'], 'requested ∩ policy')
  t.same(decide(config.policy, { audience: 'https://gw.example.com', resource: A, user: carol, client: app }).scopes,
    ['read', 'write', 'admin'], 'the union over every entry that admits the user')
  t.same(decide(config.policy, { audience: 'https://gw.example.com/', resource: A, user: bob, client: app }),
    { audience: 'https://gw.example.com', resource: A, scopes: ['read'] }, 'a trailing slash is forgiven; the policy spelling is kept')
  t.same(decide(config.policy, { audience: 'https://gw.example.com', user: bob, client: app }).resource, A,
    'no resource: the one resource this user may reach')
  t.same(decide(config.policy, { audience: 'https://gw.example.com', resource: 'https://gw.example.com/mcp/c', user: carol, client: cli }),
    { audience: 'https://gw.example.com/', resource: 'https://gw.example.com/mcp/c', scopes: [] }, 'an entry without scopes grants none')
})

t.test('refusals', async (t) => {
  const table: [string, GrantRequest, string][] = [
    ['unknown audience', { audience: 'https://other.example.com', resource: A, user: alice, client: app }, 'invalid_target'],
    ['resource of another audience', { audience: 'https://gw.example.com', resource: 'https://other.example.com/mcp/a', user: alice, client: app }, 'invalid_target'],
    ['resource differing by a slash', { audience: 'https://gw.example.com', resource: `${A}/`, user: alice, client: app }, 'invalid_target'],
    ['known pair, user not in the groups', { audience: 'https://gw.example.com', resource: 'https://gw.example.com/mcp/b', user: bob, client: app }, 'access_denied'],
    ['entry for another user', { audience: 'https://gw.example.com', resource: 'https://gw.example.com/mcp/c', user: alice, client: cli }, 'access_denied'],
    ['entry for another client', { audience: 'https://gw.example.com', resource: 'https://gw.example.com/mcp/c', user: carol, client: app }, 'access_denied'],
    ['no resource, several reachable', { audience: 'https://gw.example.com', user: alice, client: app }, 'invalid_target'],
    ['scope outside the policy', { audience: 'https://gw.example.com', resource: A, scopes: ['admin'], user: bob, client: app }, 'invalid_scope'],
  ]
  for (const [name, request, expected] of table) t.equal(refusal(request), expected, name)
})
