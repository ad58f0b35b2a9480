import { formatProblem } from '../config/errors.ts'
import {
  buildDevIdp, ConfigError, DEFAULT_DEV_IDP_YAML, DEMO_PASSWORDS, devIdpLoggerOptions, loadDevIdpConfig, parseDevIdpConfig,
  type DevIdpConfig,
} from '../dev-idp/index.ts'
import type { CliIo } from './io.ts'
import { configFlag } from './args.ts'

const USAGE = `usage: portcullis dev-idp [--config FILE]

A local OpenID Provider for trying Enterprise-Managed Authorization: OIDC discovery, JWKS,
ID tokens for the users in FILE (grant_type=password), and RFC 8693 token exchange that
issues ID-JAGs according to FILE's policy.
Without --config it runs a built-in configuration (examples/dev-idp.yaml): users alice
(group eng, password ${DEMO_PASSWORDS['alice'] ?? ''}) and bob (group sales, password ${DEMO_PASSWORDS['bob'] ?? ''}), client
demo-client / demo-secret, issuer http://127.0.0.1:8081.
Logs are JSON lines on stdout (level: $PORTCULLIS_LOG_LEVEL, default info).
Exit status: 0 after SIGINT/SIGTERM, 1 invalid configuration or port in use, 2 usage error.
`

/**
 * `portcullis dev-idp`: argv is what follows the subcommand. Runs until SIGINT or SIGTERM, then
 * closes and returns 0; returns 1 for an invalid configuration and 2 for a usage error.
 */
export async function runDevIdp (argv: string[], io: CliIo): Promise<number> {
  const args = configFlag('dev-idp', argv, io, USAGE)
  if ('exit' in args) return args.exit
  const file = args.file
  let config: DevIdpConfig
  let idp: Awaited<ReturnType<typeof buildDevIdp>>
  try {
    config = file === undefined
      ? parseDevIdpConfig(DEFAULT_DEV_IDP_YAML, { source: '<built-in dev-idp config>' })
      : await loadDevIdpConfig(file, io.env)
    idp = await buildDevIdp(config, { logger: devIdpLoggerOptions(io.env['PORTCULLIS_LOG_LEVEL'] ?? 'info', io.stdout) })
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    for (const problem of error.problems) io.stderr.write(`${formatProblem(problem)}\n`)
    io.stderr.write(`invalid: ${error.source}: ${error.problems.length} ${error.problems.length === 1 ? 'problem' : 'problems'}\n`)
    return 1
  }
  try {
    await idp.listen()
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : 'error'
    io.stderr.write(`portcullis dev-idp: cannot listen on ${config.listen.host}:${config.listen.port} (${code})\n`)
    return 1
  }
  io.stdout.write(banner(config, idp.issuer, file === undefined))
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  await idp.close()
  return 0
}

function banner (config: DevIdpConfig, issuer: string, builtIn: boolean): string {
  const users = config.users.map((user) => {
    const password = builtIn ? `  password ${DEMO_PASSWORDS[user.username] ?? '?'}` : ''
    return `    ${user.username.padEnd(12)} ${user.email}  groups [${user.groups.join(', ')}]${password}`
  })
  const [user] = config.users
  const [grant] = config.policy
  const lines = [
    '',
    `  dev IdP issuer   ${issuer}`,
    `  discovery        ${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
    `  clients          ${config.clients.map((client) => client.clientId).join(', ') || '(none)'}`,
    '  users',
    ...(users.length > 0 ? users : ['    (none)']),
    '',
  ]
  if (builtIn && user !== undefined && grant?.resources[0] !== undefined) {
    lines.push(`Try (with the gateway running): TOKEN=$(node bin/portcullis.js token --idp ${issuer} --user ${user.username} --server ${grant.resources[0]})`, '')
  }
  lines.push('Ctrl-C stops it.', '')
  return lines.join('\n')
}
