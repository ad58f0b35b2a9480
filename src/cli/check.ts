import { parseArgs } from 'node:util'
import { ConfigError, configWarnings, loadConfig } from '../config/load.ts'
import { formatProblem } from '../config/errors.ts'

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
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; env: Record<string, string | undefined> },
): Promise<number> {
  let file: string
  try {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    })
    if (values.help === true) {
      io.stdout.write(USAGE)
      return 0
    }
    file = values.config ?? io.env['PORTCULLIS_CONFIG'] ?? 'portcullis.yaml'
  } catch (error) {
    io.stderr.write(`portcullis check: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
    return 2
  }
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
