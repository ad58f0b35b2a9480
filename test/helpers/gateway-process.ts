import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url))
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 10_000

export interface GatewayProcessOptions {
  /** the config; `listen` and `admin` default to 127.0.0.1, port 0 (the OS picks) */
  readonly yaml: string
  /** added to this process's environment; OTEL_* and NODE_OPTIONS are dropped unless given here */
  readonly env?: Record<string, string>
  /** resolve only once /readyz answers 200, as a Service would wait (default true) */
  readonly waitReady?: boolean
}

export interface GatewayProcess {
  /** the bound URLs, from the `portcullis listening` log line */
  readonly url: string
  readonly adminUrl: string
  readonly pid: number
  /** every JSON line it wrote on stdout, parsed, as they arrive */
  readonly logs: Record<string, unknown>[]
  /** every stdout line, raw */
  readonly rawLogs: string[]
  /** everything it wrote on stderr so far */
  stderr (): string
  /** the first log line (already written or still to come) matching; rejects on timeout or exit */
  waitForLog (predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** SIGTERM, wait for the exit (SIGKILL after `timeoutMs`); the exit code (null if killed by a signal) */
  stop (timeoutMs?: number): Promise<number | null>
  /** SIGKILL, wait for the exit */
  kill (): Promise<void>
  /** GET {adminUrl}/metrics, the text */
  metrics (): Promise<string>
}

/** Every gateway process still running: none may outlive the test process. */
const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * A real gateway process, `node bin/portcullis.js start --config <temp file>`, as an operator runs
 * it: its own pid, its own event loop, JSON logs on stdout. Resolves once it logs
 * `portcullis listening`; rejects (with the tail of its output) if it exits or times out first.
 */
export async function startGatewayProcess (opts: GatewayProcessOptions): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-process-'))
  const file = join(dir, 'portcullis.yaml')
  let yaml = opts.yaml
  if (!/^listen:/m.test(yaml)) yaml += '\nlisten: { host: 127.0.0.1, port: 0 }\n'
  if (!/^admin:/m.test(yaml)) yaml += '\nadmin: { host: 127.0.0.1, port: 0 }\n'
  writeFileSync(file, yaml)

  // Not the test runner's NODE_OPTIONS (its hooks would catch SIGTERM), nor its OTEL_* settings.
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('OTEL_') && name !== 'NODE_OPTIONS') env[name] = value
  }
  Object.assign(env, opts.env)
  const child = spawn(process.execPath, [BIN, 'start', '--config', file], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => {
    running.delete(child)
    rmSync(dir, { recursive: true, force: true })
    resolve(code)
  }))

  const logs: Record<string, unknown>[] = []
  const rawLogs: string[] = []
  let stderr = ''
  let partial = ''
  const waiters = new Set<() => void>()
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line === '') continue
      rawLogs.push(line)
      try {
        const parsed: unknown = JSON.parse(line)
        if (typeof parsed === 'object' && parsed !== null) logs.push(parsed as Record<string, unknown>)
      } catch { /* not a JSON line */ }
    }
    for (const wake of waiters) wake()
  })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const tail = (): string => `stderr:\n${stderr.slice(-2000)}\nstdout:\n${rawLogs.slice(-20).join('\n')}`

  const waitForLog = async (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> => {
    let from = 0
    const seen = (): Record<string, unknown> | undefined => {
      for (; from < logs.length; from++) if (predicate(logs[from] as Record<string, unknown>)) return logs[from]
      return undefined
    }
    const found = seen()
    if (found !== undefined) return found
    return await new Promise((resolve, reject) => {
      const finish = (): void => { clearTimeout(timer); waiters.delete(check) }
      const check = (): void => {
        const line = seen()
        if (line !== undefined) { finish(); resolve(line) }
      }
      const timer = setTimeout(() => { finish(); reject(new Error(`gateway ${child.pid}: no such log line within ${timeoutMs} ms\n${tail()}`)) }, timeoutMs)
      waiters.add(check)
      void closed.then((code) => {
        if (!waiters.has(check)) return
        check() // 'close' comes after the last of stdout
        if (!waiters.has(check)) return
        finish()
        reject(new Error(`gateway ${child.pid} exited (${code ?? child.signalCode}) before the log line\n${tail()}`))
      })
    })
  }

  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await closed
  }

  let listening: Record<string, unknown>
  try {
    listening = await waitForLog((l) => l.msg === 'portcullis listening', START_TIMEOUT_MS)
  } catch (err) {
    await kill()
    throw new Error(`the gateway did not start: ${(err as Error).message}`)
  }
  const url = String(listening.url)
  const adminUrl = String(listening.adminUrl)
  // what a Service waits for before it sends traffic (with a store: the shared sets are read)
  const deadline = Date.now() + START_TIMEOUT_MS
  while (opts.waitReady !== false && !await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(2000) }).then(async (r) => { await r.body?.cancel(); return r.ok }, () => false)) {
    if (Date.now() > deadline) {
      await kill()
      throw new Error(`the gateway did not become ready within ${START_TIMEOUT_MS} ms\n${tail()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }

  return {
    url,
    adminUrl,
    pid: child.pid as number,
    logs,
    rawLogs,
    stderr: () => stderr,
    waitForLog,
    async stop (timeoutMs = STOP_TIMEOUT_MS) {
      if (child.exitCode !== null || child.signalCode !== null) return await closed
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await closed
      clearTimeout(timer)
      return code
    },
    kill,
    async metrics () {
      const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
      if (!res.ok) throw new Error(`${adminUrl}/metrics: HTTP ${res.status}`)
      return await res.text()
    },
  }
}
