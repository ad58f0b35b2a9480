import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config/load.ts'
import { compilePolicy, decide, type PolicyKind } from '../policy/decide.ts'
import { decideResource } from '../policy/resource-decision.ts'
import type { Principal } from '../authn/principal.ts'
import type { CliIo } from './io.ts'

/**
 * `portcullis policy explain --config F --server S --tool T [--scope "a b"] [--claims JSON]`:
 * run the gateway's own decision for one identity and one tool (or `--kind prompts|resources`:
 * a resource URI as the request path judges it, refused when not in its RFC 3986 normal form)
 * and print the decision, the rule id the audit log would record, and the reason.
 * Exit 0 allow, 1 deny, 2 usage or config error (design.md §5).
 */
export async function runPolicy (argv: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv
  let values
  try {
    if (action !== 'explain') throw new Error('expected: policy explain --config F --server S --tool T [--scope "a b"] [--claims JSON]')
    values = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        server: { type: 'string' },
        tool: { type: 'string' },
        kind: { type: 'string', default: 'tools' },
        scope: { type: 'string', default: '' },
        claims: { type: 'string', default: '{}' },
      },
      strict: true,
    }).values
    if (values.server === undefined || values.tool === undefined) throw new Error('--server and --tool are required')
    if (!['tools', 'prompts', 'resources'].includes(values.kind)) throw new Error('--kind must be tools, prompts or resources')
  } catch (err) {
    io.stderr.write(`portcullis policy: ${(err as Error).message}\n`)
    return 2
  }
  let claims: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(values.claims)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object')
    claims = parsed as Record<string, unknown>
  } catch {
    io.stderr.write('portcullis policy: --claims must be a JSON object, e.g. \'{"groups":["eng"],"email":"a@example.com"}\'\n')
    return 2
  }
  const path = values.config ?? io.env.PORTCULLIS_CONFIG ?? 'portcullis.yaml'
  let config
  try {
    config = await loadConfig(path, io.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.stderr.write(`portcullis policy: ${path} is not valid:\n${err.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}\n`)
    return 2
  }
  const server = Object.hasOwn(config.servers, values.server) ? config.servers[values.server] : undefined
  if (server === undefined) {
    io.stderr.write(`portcullis policy: no server ${JSON.stringify(values.server)} in ${path} (servers: ${Object.keys(config.servers).join(', ')})\n`)
    return 2
  }
  const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined
  const principal: Principal = {
    key: 'explain',
    subject: str(claims.sub) ?? 'explain',
    issuer: str(claims.issuer),
    clientId: str(claims.client_id),
    scopes: values.scope.split(' ').filter((s) => s !== ''),
    claims,
    anonymous: false,
    assertionJti: undefined,
  }
  const policy = compilePolicy(server)
  const decision = values.kind === 'resources' ? decideResource(policy, values.tool, principal) : decide(policy, values.kind as PolicyKind, values.tool, principal)
  const verdict = decision.allow ? 'allow' : server.mode === 'shadow' ? 'deny (would_deny: the server is in shadow mode)' : 'deny'
  io.stdout.write([
    `${verdict}: ${values.kind.replace(/s$/, '')} ${JSON.stringify(values.tool)} on server ${server.name}`,
    `  rule:   ${decision.ruleId}`,
    `  reason: ${decision.reason}`,
    ...(decision.requiredScopes.length > 0 ? [`  step-up: a token with scope "${decision.requiredScopes.join(' ')}" would be allowed (403 insufficient_scope)`] : []),
    '',
  ].join('\n'))
  return decision.allow ? 0 : 1
}
