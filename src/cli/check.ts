import { ConfigError, configWarnings, loadConfig } from '../config/load.ts'
import { formatProblem } from '../config/errors.ts'
import { configFlag } from './args.ts'
import type { CliIo } from './io.ts'

const USAGE = `usage: portcullis check [--config FILE]

Validates a configuration and prints every problem with its path.
FILE defaults to $PORTCULLIS_CONFIG, else ./portcullis.yaml.
Exit status: 0 valid, 1 invalid, 2 usage error.
`

/**
 * `portcullis check`: argv is what follows the subcommand. Returns the exit code:
 * 0 valid (warnings go to stdout), 1 invalid (every problem on stderr), 2 usage error.
 */
export async function runCheck(
  argv: string[],
  io: CliIo,
): Promise<number> {
  const args = configFlag('check', argv, io, USAGE)
  if ('exit' in args) return args.exit
  const file = args.file ?? io.env['PORTCULLIS_CONFIG'] ?? 'portcullis.yaml'
  try {
    const config = await loadConfig(file, io.env)
    const count = Object.keys(config.servers).length
    io.stdout.write(`ok: ${file}: ${count} ${count === 1 ? 'server' : 'servers'}\n`)
    for (const warning of configWarnings(config)) io.stdout.write(`warning: ${warning}\n`)
    return 0
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    for (const problem of error.problems) io.stderr.write(`${formatProblem(problem)}\n`)
    const count = error.problems.length
    io.stderr.write(`invalid: ${file}: ${count} ${count === 1 ? 'problem' : 'problems'}\n`)
    return 1
  }
}
