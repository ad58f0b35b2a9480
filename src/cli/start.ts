import { parseArgs } from 'node:util'
import { loadConfig, ConfigError, configWarnings } from '../config/load.ts'
import { buildGateway } from '../gateway.ts'
import { startTracing } from '../telemetry/tracing.ts'
import type { CliIo } from './io.ts'

/** `portcullis start`: load and validate the config completely, then listen; SIGTERM drains. */
export async function runStart (argv: string[], io: CliIo): Promise<number> {
  let path: string
  try {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true })
    path = values.config ?? io.env.PORTCULLIS_CONFIG ?? 'portcullis.yaml'
  } catch (err) {
    io.stderr.write(`portcullis start: ${(err as Error).message}\n`)
    return 2
  }
  let config
  try {
    config = await loadConfig(path, io.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`portcullis: ${path} is not valid:\n${err.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}\n`)
      return 1
    }
    throw err
  }
  // OpenTelemetry first, so every span of the gateway's life is exported (OTEL_* variables only).
  const stopTracing = await startTracing(io.env)
  const gateway = buildGateway(config)
  for (const warning of configWarnings(config)) gateway.app.log.warn(warning)
  const { url, adminUrl } = await gateway.listen()
  gateway.app.log.info({ url, adminUrl, servers: Object.keys(config.servers) }, 'portcullis listening')
  // SIGHUP: reload the same file. An invalid file is refused with its problems; the running config stays.
  process.on('SIGHUP', () => {
    loadConfig(path, io.env).then(async (next) => {
      const { applied, restartNeeded } = await gateway.reload(next)
      if (applied) gateway.app.log.info({ servers: Object.keys(next.servers) }, 'config reloaded')
      else gateway.app.log.error({ restartNeeded }, 'config not reloaded: these changes need a restart')
    }, (err: unknown) => {
      if (err instanceof ConfigError) gateway.app.log.error({ problems: err.problems }, 'config not reloaded: the file is invalid')
      else gateway.app.log.error({ err }, 'config not reloaded')
    })
  })
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      gateway.app.log.info({ signal }, 'draining')
      gateway.close()
        .then(async () => { await stopTracing?.() })
        .then(resolve, (err: unknown) => {
          gateway.app.log.error({ err }, 'error while closing')
          resolve()
        })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  // The log destination is buffered: write out what is left.
  ;(gateway.app.log as unknown as { flush?: () => void }).flush?.()
  return 0
}
