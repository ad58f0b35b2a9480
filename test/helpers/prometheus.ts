import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { addressInUse, withFreePorts } from './ports.ts'

/** Debian's prometheus package (2.42 on bookworm); CI installs it (.ci/run). */
export const PROMETHEUS_BIN = process.env.PORTCULLIS_TEST_PROMETHEUS ?? '/usr/bin/prometheus'

export function prometheusAvailable (): boolean {
  return existsSync(PROMETHEUS_BIN)
}

export interface PrometheusOptions {
  /** host:port targets to scrape at /metrics */
  readonly targets: readonly string[]
  /** default 1s */
  readonly scrapeInterval?: string
}

export interface RunningPrometheus {
  /** http://127.0.0.1:PORT */
  readonly url: string
  readonly child: ChildProcess
  /** what Prometheus wrote to stdout/stderr so far (for failure messages) */
  output (): string
  /** GET /api/v1/{path}?{params}, `data` of a success answer (throws on an error answer) */
  api<T = unknown> (path: string, params: Record<string, string>): Promise<T>
  /** poll `fn` until it returns a value other than undefined, or throw after `timeoutMs` */
  until<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>
  /** SIGTERM (SIGKILL after 5 s), then delete its config and data directory. Idempotent. */
  close (): Promise<void>
}

/**
 * A real Prometheus of our own: temp config and TSDB directory, a free loopback port, exemplar
 * storage on. Never the system service: the caller must `close()` it (in a teardown).
 * Its port is given on the command line: on one taken meanwhile it exits, and is started again.
 */
export async function startPrometheus (opts: PrometheusOptions): Promise<RunningPrometheus> {
  return await withFreePorts(1, async (port) => await startPrometheusOn(opts, port))
}

async function startPrometheusOn (opts: PrometheusOptions, port: number): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-prometheus-'))
  const interval = opts.scrapeInterval ?? '1s'
  // Prometheus 2.42 has no `scrape_protocols` (added in 2.49); it asks for OpenMetrics first on
  // its own (Accept: application/openmetrics-text;version=1.0.0,…), which is what carries exemplars.
  await writeFile(join(dir, 'prometheus.yml'), `global:
  scrape_interval: ${interval}
  scrape_timeout: ${interval}
  evaluation_interval: ${interval}
scrape_configs:
  - job_name: portcullis
    metrics_path: /metrics
    static_configs:
      - targets: [${opts.targets.map((t) => JSON.stringify(t)).join(', ')}]
`)
  const child = spawn(PROMETHEUS_BIN, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--enable-feature=exemplar-storage',
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { output += c.toString() })
  // 'close': after the exit, once all of its output is read
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  let closed = false
  const url = `http://127.0.0.1:${port}`

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    await rm(dir, { recursive: true, force: true })
  }

  const until = async <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs
    let last: unknown
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}:\n${output}`)
      try {
        const value = await fn()
        if (value !== undefined) return value
      } catch (err) {
        last = err
      }
      if (Date.now() > deadline) throw new Error(`prometheus: no ${what} within ${timeoutMs} ms${last === undefined ? '' : ` (last error: ${String(last)})`}\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  const api = async <T>(path: string, params: Record<string, string>): Promise<T> => {
    const res = await request(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`, { signal: AbortSignal.timeout(5000) })
    const body = await res.body.json() as { status?: string; data?: T; error?: string }
    if (body.status !== 'success') throw new Error(`prometheus /api/v1/${path}: HTTP ${res.statusCode} ${body.error ?? ''}`)
    return body.data as T
  }

  try {
    await until('readiness', async () => {
      const res = await request(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) })
      await res.body.dump()
      return res.statusCode === 200 ? true : undefined
    }, 30_000)
  } catch (err) {
    await close()
    // the caller retries on a port taken meanwhile
    throw addressInUse(output) ? new Error(`prometheus could not listen on port ${port}:\n${output}`) : err
  }
  return { url, child, output: () => output, api, until, close }
}
