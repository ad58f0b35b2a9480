// The decision table: identities × tools × rules, through the real config loader and decide().
// The same decide() gates tools/call and filters tools/list, so this table is the contract of both.
import t from 'tap'
import { Writable } from 'node:stream'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/load.ts'
import { compilePolicy, decide, type PolicyKind } from '../../src/policy/decide.ts'
import { compileGlob } from '../../src/policy/glob.ts'
import { ANONYMOUS, type Principal } from '../../src/authn/principal.ts'
import { runPolicy } from '../../src/cli/policy.ts'

const YAML = `
publicUrl: https://mcp.example.com
authorization:
  identityProviders:
    - { issuer: https://idp.example.com, claims: { groups: groups, email: email, tenant: tenant } }
servers:
  gh:
    upstream: { url: http://gh.internal/mcp }
    scopes: [gh.read, gh.write, gh.admin]
    tools:
      - allow: ["search_*", get_issue]
        scopes: [gh.read]
      - allow: [create_issue]
        scopes: [gh.write]
        claims: { groups: [eng, sre] }
      - allow: [merge_pr]
        scopes: [gh.write, gh.admin]
        claims: { email_domain: [example.com] }
        id: maintainers-merge
      - allow: [admin_tool]
        claims: { sub: [root-user], client_id: [ops-console], issuer: [https://idp.example.com] }
      - deny: ["delete_*", "search_secrets"]
        id: no-deletes
      - allow: ["delete_branch"]
        scopes: [gh.admin]
    prompts:
      - allow: [summarize]
      - deny: [leak]
    resources:
      - allow: ["repo://public/*"]
  open:
    upstream: { url: http://open.internal/mcp }
    tools: [{ allow: ["*"] }]
  closed:
    upstream: { url: http://closed.internal/mcp }
`
const config = parseConfig(YAML, { source: '<table>', env: {} })
const policies = Object.fromEntries(Object.values(config.servers).map((s) => [s.name, compilePolicy(s)]))

function who (scopes: string, claims: Record<string, unknown> = {}, extra: Partial<Principal> = {}): Principal {
  return { key: 'k', subject: 'alice', issuer: 'https://idp.example.com', clientId: 'claude', scopes: scopes.split(' ').filter(Boolean), claims, anonymous: false, assertionJti: undefined, ...extra }
}
const reader = who('gh.read', { groups: ['sales'], email: 'r@example.com' })
const engineer = who('gh.read gh.write', { groups: ['eng'], email: 'e@other.org' })
const maintainer = who('gh.read gh.write gh.admin', { groups: ['eng'], email: 'm@EXAMPLE.com' })
const noScope = who('', { groups: ['eng'] })
const root = who('', {}, { subject: 'root-user', clientId: 'ops-console' })
const rootOtherClient = who('', {}, { subject: 'root-user', clientId: 'claude' })

type Row = [string, PolicyKind, string, Principal, boolean, string, string]
const rows: Row[] = [
  // server, kind, name, who, allow, rule id, reason
  ['gh', 'tools', 'search_code', reader, true, 'tools[0]', 'allowed_by_rule'],
  ['gh', 'tools', 'get_issue', reader, true, 'tools[0]', 'allowed_by_rule'],
  ['gh', 'tools', 'get_issue', noScope, false, 'tools[0]', 'insufficient_scope'],
  ['gh', 'tools', 'get_issue', ANONYMOUS, false, 'tools[0]', 'scope_not_held'],
  ['gh', 'tools', 'GET_ISSUE', engineer, false, 'default', 'no_matching_rule'],
  ['gh', 'tools', 'get_issue ', engineer, false, 'default', 'no_matching_rule'],
  ['gh', 'tools', 'gеt_issue', engineer, false, 'default', 'no_matching_rule'], // Cyrillic е
  ['gh', 'tools', 'Search_code', engineer, false, 'default', 'no_matching_rule'],
  ['gh', 'tools', 'create_issue', engineer, true, 'tools[1]', 'allowed_by_rule'],
  ['gh', 'tools', 'create_issue', reader, false, 'default', 'claims_not_matched'],
  ['gh', 'tools', 'create_issue', who('gh.read', { groups: ['eng'] }), false, 'tools[1]', 'insufficient_scope'],
  ['gh', 'tools', 'merge_pr', maintainer, true, 'maintainers-merge', 'allowed_by_rule'],
  ['gh', 'tools', 'merge_pr', engineer, false, 'default', 'claims_not_matched'],
  ['gh', 'tools', 'admin_tool', root, true, 'tools[3]', 'allowed_by_rule'],
  ['gh', 'tools', 'admin_tool', rootOtherClient, false, 'default', 'claims_not_matched'],
  ['gh', 'tools', 'delete_repo', maintainer, false, 'no-deletes', 'denied_by_rule'],
  ['gh', 'tools', 'delete_branch', maintainer, false, 'no-deletes', 'denied_by_rule'], // deny wins over a later allow
  ['gh', 'tools', 'search_secrets', maintainer, false, 'no-deletes', 'denied_by_rule'], // deny wins over search_*
  ['gh', 'prompts', 'summarize', reader, true, 'prompts[0]', 'allowed_by_rule'],
  ['gh', 'prompts', 'leak', reader, false, 'prompts[1]', 'denied_by_rule'],
  ['gh', 'prompts', 'other', reader, false, 'default', 'no_matching_rule'],
  ['gh', 'resources', 'repo://public/readme', reader, true, 'resources[0]', 'allowed_by_rule'],
  ['gh', 'resources', 'repo://private/key', reader, false, 'default', 'no_matching_rule'],
  ['gh', 'resources', 'REPO://public/readme', reader, false, 'default', 'no_matching_rule'],
  ['open', 'tools', 'anything', ANONYMOUS, true, 'tools[0]', 'allowed_by_rule'],
  ['open', 'prompts', 'anything', ANONYMOUS, true, 'default', 'default_allow'],
  ['closed', 'tools', 'anything', maintainer, false, 'default', 'no_rules'],
  ['closed', 'resources', 'file:///x', maintainer, true, 'default', 'default_allow'],
]

for (const [server, kind, name, principal, allow, ruleId, reason] of rows) {
  const d = decide(policies[server]!, kind, name, principal)
  t.same({ allow: d.allow, ruleId: d.ruleId, reason: d.reason }, { allow, ruleId, reason }, `${server} ${kind} ${JSON.stringify(name)} for ${principal.subject}/${principal.scopes.join('+') || '-'}`)
}

t.test('step-up names every scope of the cheapest admitting rule', async (t) => {
  const d = decide(policies.gh!, 'tools', 'create_issue', who('gh.read', { groups: ['sre'] }))
  t.same(d.requiredScopes, ['gh.write'])
})

t.test('globs: * any run, ? one code point, regex characters literal', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['search_*', 'search_', true], ['search_*', 'search', false], ['a?c', 'abc', true], ['a?c', 'ac', false],
    ['a?c', 'a😀c', true], ['a.c', 'abc', false], ['a.c', 'a.c', true], ['(x)', '(x)', true], ['*', '', true],
    ['get_*_v2', 'get_user_v2', true], ['get_*_v2', 'get_user_v3', false], ['x[1]', 'x[1]', true], ['x', 'X', false],
  ]
  for (const [pattern, name, expected] of cases) t.equal(compileGlob(pattern)(name), expected, `${pattern} ~ ${name}`)
})

t.test('portcullis policy explain prints the rule id and exits 0/1/2', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-explain-'))
  const file = join(dir, 'p.yaml')
  await writeFile(file, YAML)
  const run = async (args: string[]): Promise<{ code: number, out: string, err: string }> => {
    let out = ''
    let err = ''
    const sink = (f: (s: string) => void): Writable => new Writable({ write (c: Buffer, _e, cb) { f(c.toString()); cb() } })
    const code = await runPolicy(args, { stdout: sink((s) => { out += s }), stderr: sink((s) => { err += s }), env: {} })
    return { code, out, err }
  }
  const allow = await run(['explain', '--config', file, '--server', 'gh', '--tool', 'merge_pr', '--scope', 'gh.write gh.admin', '--claims', '{"email":"m@example.com"}'])
  t.equal(allow.code, 0)
  t.match(allow.out, /^allow: tool "merge_pr"/)
  t.match(allow.out, /rule: +maintainers-merge/)
  const deny = await run(['explain', '--config', file, '--server', 'gh', '--tool', 'delete_repo', '--scope', 'gh.admin'])
  t.equal(deny.code, 1)
  t.match(deny.out, /rule: +no-deletes/)
  t.match(deny.out, /reason: denied_by_rule/)
  const step = await run(['explain', '--config', file, '--server', 'gh', '--tool', 'create_issue', '--scope', 'gh.read', '--claims', '{"groups":["eng"]}'])
  t.equal(step.code, 1)
  t.match(step.out, /step-up: a token with scope "gh.write"/)
  t.equal((await run(['explain', '--config', file, '--server', 'nope', '--tool', 'x'])).code, 2)
  t.equal((await run(['explain', '--config', file, '--server', 'gh'])).code, 2)
  t.equal((await run(['explain', '--config', file, '--server', 'gh', '--tool', 'x', '--claims', '[1]'])).code, 2)
  t.equal((await run(['explain', '--config', join(dir, 'missing.yaml'), '--server', 'gh', '--tool', 'x'])).code, 2)
  t.equal((await run(['frobnicate'])).code, 2)
})

t.test('the rollout examples load, and open up in stages', async (t) => {
  const env = { DOCS_MCP_TOKEN: 'x', TICKETS_MCP_TOKEN: 'x', GRAFANA_MCP_TOKEN: 'x', PORTCULLIS_CLIENT_SECRET: 'x' }
  const { readFile } = await import('node:fs/promises')
  const stage = async (n: string) => parseConfig(await readFile(new URL(`../../examples/rollout/${n}`, import.meta.url), 'utf8'), { source: n, env })
  const sre = who('tickets.read tickets.write docs.read observability.read', { groups: ['sre'] })
  for (const [file, createAllowed, mode] of [['1-read-only.yaml', false, 'enforce'], ['2-writes-in-shadow.yaml', true, 'shadow'], ['3-writes-enforced.yaml', true, 'enforce']] as const) {
    const cfg = await stage(file)
    const tickets = compilePolicy(cfg.servers.tickets!)
    t.equal(decide(tickets, 'tools', 'get_issue', sre).allow, true, `${file}: reads allowed`)
    t.equal(decide(tickets, 'tools', 'create_issue', sre).allow, createAllowed, `${file}: create_issue`)
    t.equal(decide(tickets, 'tools', 'delete_issue', sre).ruleId, 'no-deletes', `${file}: deletes denied by name`)
    t.equal(cfg.servers.tickets!.mode, mode)
    t.equal(decide(compilePolicy(cfg.servers.observability!), 'tools', 'query_metrics', sre).allow, true)
  }
})
