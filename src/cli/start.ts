import { parseArgs } from 'node:util'
import { loadConfig, ConfigError, configWarnings } from '../config/load.ts'
import { buildGateway } from '../gateway.ts'
import { TRACES_FLUSH_MS, startTracing } from '../telemetry/tracing.ts'
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
  const log = gateway.app.log
  // The log destination is buffered: write out what is left.
  const flushLog = (): void => { (log as unknown as { flush?: () => void }).flush?.() }
  const tracesFlushed = await new Promise<boolean>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'draining')
      gateway.close()
        .catch((err: unknown) => { log.error({ err }, 'error while closing') })
        .then(async () => {
          // The audit lines first: they must not wait for (or be lost with) a collector that does not answer.
          flushLog()
          if (stopTracing === undefined) return true
          return settleWithin(stopTracing(), TRACES_FLUSH_MS).then((settled) => {
            if (!settled) log.warn({ waitedMs: TRACES_FLUSH_MS }, 'traces not flushed at stop: the collector did not take the last spans in time; they are dropped')
            return settled
          }, (err: unknown) => {
            log.error({ err }, 'could not flush traces at stop')
            return true
          })
        })
        .then(resolve, (err: unknown) => {
          log.error({ err }, 'error while stopping')
          resolve(true)
        })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  flushLog()
  // An export still hanging on the collector's socket would keep the process alive for the
  // SDK's own timeouts and retries: end it (the timer does not itself hold the process open).
  if (!tracesFlushed) setTimeout(() => process.exit(0), 100).unref()
  return 0
}

/** Whether `work` settled within `ms` (a rejection is passed on). */
function settleWithin (work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  return Promise.race([work.then(() => true), timeout]).finally(() => clearTimeout(timer))
}
