// Micro-benchmark of decide(): the policy decision runs per tools/call and per listed tool, so it
// must stay off the profile. Plain loop with performance.now(); prints ns/op, asserts nothing.
import { parseConfig } from '../../../src/config/load.ts'
import { compilePolicy, decide, decideRemembered } from '../../../src/policy/decide.ts'
import type { Principal } from '../../../src/authn/principal.ts'

const rules = Array.from({ length: 20 }, (_, i) => `      - allow: ["tool_${i}_*", exact_${i}]\n        scopes: [s.read]\n        claims: { groups: [g${i % 5}, eng] }`).join('\n')
const config = parseConfig(`
publicUrl: https://mcp.example.com
authorization:
  identityProviders: [{ issuer: https://idp.example.com, claims: { groups: groups } }]
servers:
  s:
    upstream: { url: http://s.internal/mcp }
    scopes: [s.read]
    tools:
${rules}
      - deny: ["delete_*"]
`, { source: '<bench>', env: {} })
const policy = compilePolicy(config.servers.s!)
const principal: Principal = { key: 'k', subject: 'u', issuer: 'https://idp.example.com', clientId: 'c', scopes: ['s.read'], claims: { groups: ['eng'] }, anonymous: false, assertionJti: undefined }

function bench (name: string, fn: () => unknown, iterations = 1_000_000): void {
  for (let i = 0; i < 10_000; i++) fn()
  const start = performance.now()
  for (let i = 0; i < iterations; i++) fn()
  const ns = (performance.now() - start) * 1e6 / iterations
  console.log(`${name.padEnd(48)} ${ns.toFixed(0).padStart(6)} ns/op  ${(1e9 / ns / 1e6).toFixed(2)} M ops/s`)
}

console.log('decide() with 21 rules (20 allow with globs and claims, 1 deny):')
bench('exact name, allowed by the last allow rule', () => decide(policy, 'tools', 'exact_19', principal))
bench('glob name, allowed by the first rule', () => decide(policy, 'tools', 'tool_0_search', principal))
bench('denied by the deny rule', () => decide(policy, 'tools', 'delete_everything', principal))
bench('no rule matches (default deny)', () => decide(policy, 'tools', 'unknown_tool', principal))
const list = Array.from({ length: 100 }, (_, i) => ({ name: `tool_${i % 25}_x` }))
bench('filter a 100-tool tools/list page', () => list.filter((t) => decide(policy, 'tools', t.name, principal).allow), 20_000)
bench('decideRemembered (the request path): repeat decision', () => decideRemembered(policy, 'tools', 'exact_19', principal))
bench('decideRemembered: filter a 100-tool page again', () => list.filter((t) => decideRemembered(policy, 'tools', t.name, principal).allow), 20_000)
