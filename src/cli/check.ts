import { ConfigError, configWarnings, loadConfig } from '../config/load.ts'
import { formatProblem } from '../config/errors.ts'
import { configFlag } from './args.ts'
import type { CliIo } from './io.ts'
import type { StoreConfig } from '../config/types.ts'
import { RedisStore } from '../store/redis-store.ts'

const USAGE = `usage: portcullis check [--config FILE]

Validates a configuration and prints every problem with its path.
With store.url, also tries the store for 2 s and warns when it does not answer
(the gateway starts anyway: grants fail closed until it does).
FILE defaults to $PORTCULLIS_CONFIG, else ./portcullis.yaml.
Exit status: 0 valid, 1 invalid, 2 usage error.
`

/**
 * `portcullis check`: argv is what follows the subcommand. Returns the exit code:
 * 0 valid (warnings go to stdout), 1 invalid (every problem on stderr), 2 usage error.
 */
export async function runCheck (
  argv: string[],
  io: CliIo
): Promise<number> {
  const args = configFlag('check', argv, io, USAGE)
  if ('exit' in args) return args.exit
  const file = args.file ?? io.env['PORTCULLIS_CONFIG'] ?? 'portcullis.yaml'
  try {
    const config = await loadConfig(file, io.env)
    const count = Object.keys(config.servers).length
    io.stdout.write(`ok: ${file}: ${count} ${count === 1 ? 'server' : 'servers'}\n`)
    for (const warning of configWarnings(config)) io.stdout.write(`warning: ${warning}\n`)
    if (config.store !== undefined) {
      io.stdout.write(await storeAnswers(config.store)
        ? 'store: reachable\n'
        : 'warning: store.url does not answer (within 2 s): until it does, token requests, registrations and logins fail with 503\n')
    }
    return 0
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    for (const problem of error.problems) io.stderr.write(`${formatProblem(problem)}\n`)
    const count = error.problems.length
    io.stderr.write(`invalid: ${file}: ${count} ${count === 1 ? 'problem' : 'problems'}\n`)
    return 1
  }
}

/** Whether the Redis at store.url answers within `ms` (the URL, and so its password, is never printed). */
async function storeAnswers (config: StoreConfig, ms = 2_000): Promise<boolean> {
  const store = new RedisStore({ url: config.url, keyPrefix: config.keyPrefix })
  try {
    const up = new Promise<boolean>((resolve) => {
      store.onStateChange((isUp) => { if (isUp) resolve(true) })
      setTimeout(() => resolve(store.up), ms).unref()
    })
    store.start()
    return await up
  } finally {
    await store.close()
  }
}
