// The response stage that filters the lists (policy/list-filter.ts), on its own: what each
// principal sees of a tools/list result, in shadow mode, and with no principal at all (fail closed).
import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { compilePolicy } from '../../src/policy/decide.ts'
import { filterLists } from '../../src/policy/list-filter.ts'
import { newExchange, NO_RESPONSE_STAGES } from '../../src/mcp/exchange.ts'
import { ANONYMOUS, type Principal } from '../../src/authn/principal.ts'
import { ToolNames } from '../../src/telemetry/tool-names.ts'
import type { ServerResponse } from 'node:http'

const config = parseConfig(`
publicUrl: https://mcp.example.com
authorization:
  identityProviders:
    - { issuer: https://idp.example.com }
servers:
  gh:
    upstream: { url: http://gh.internal/mcp }
    scopes: [gh.read]
    tools:
      - allow: [search, get_issue]
        scopes: [gh.read]
      - deny: [delete_repo]
  watched:
    upstream: { url: http://w.internal/mcp }
    mode: shadow
    tools:
      - allow: [search]
`, { source: '<list-filter>', env: {} })

const reader: Principal = { ...ANONYMOUS, key: 'r', subject: 'reader', issuer: 'https://idp.example.com', scopes: ['gh.read'], anonymous: false }
const LIST = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'search' }, { name: 'get_issue' }, { name: 'delete_repo' }, { name: 'other' }] } }

function listed (server: 'gh' | 'watched', principal: Principal | null): string[] {
  const s = config.servers[server]!
  const exchange = newExchange(s, compilePolicy(s), NO_RESPONSE_STAGES, {} as ServerResponse)
  exchange.principal = principal
  const out = filterLists(new ToolNames())(exchange, LIST, 'tools/list') ?? LIST
  return (out as typeof LIST).result.tools.map((x) => x.name)
}

const cases: Array<[string, 'gh' | 'watched', Principal | null, string[]]> = [
  ['a principal with the scope sees the allowed tools', 'gh', reader, ['search', 'get_issue']],
  ['the anonymous principal sees nothing the rules gate by scope', 'gh', ANONYMOUS, []],
  ['no principal at all: judged as nobody, not passed through', 'gh', null, []],
  ['shadow mode reports and filters nothing', 'watched', null, ['search', 'get_issue', 'delete_repo', 'other']],
]
for (const [name, server, principal, want] of cases) {
  t.same(listed(server, principal), want, name)
}
