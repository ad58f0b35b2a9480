// Child-process plumbing for `npm run conformance`: every child is tracked and killed on exit,
// every wait is bounded, and the official conformance CLI's per-scenario checks.json is parsed.
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { everythingEntry } from '../helpers/everything.ts'
import { boundPort, REPORT_BOUND_PORT } from '../helpers/ports.ts'

const require = createRequire(import.meta.url)
const conformancePkg = require.resolve('@modelcontextprotocol/conformance/package.json')
const conformanceBin = (require(conformancePkg) as { bin: { conformance: string } }).bin.conformance
/** The conformance CLI's entry point (its package.json "bin"), run with this Node (24). */
export const conformanceEntry: string = join(dirname(conformancePkg), conformanceBin)

const children = new Set<ChildProcess>()
// Whatever way this process ends (normal exit, process.exit, uncaught error), no child outlives it.
process.on('exit', killAll)

/** Kill (SIGKILL) every child still running; safe to call from a process 'exit' listener. */
export function killAll (): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Resolve `promise`, or reject after `ms` with a message naming `what`. */
export async function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
  })
  try { return await Promise.race([promise, timeout]) } finally { clearTimeout(timer) }
}

export interface Everything { readonly url: string; close (): Promise<void> }

/**
 * The official server-everything in streamableHttp mode on a port the OS picks (it reads PORT, 0,
 * and prints only that: REPORT_BOUND_PORT tells the bound one); stderr goes to `logFile`.
 */
export async function startEverything (logFile: string, timeoutMs = 20_000): Promise<Everything> {
  const child = track(spawn(process.execPath, ['--import', REPORT_BOUND_PORT, everythingEntry, 'streamableHttp'], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }))
  const log = createWriteStream(logFile)
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  let seen = ''
  child.stderr?.on('data', (c: Buffer) => { seen = (seen + c.toString()).slice(-4096) })
  const port = await within(timeoutMs, 'server-everything start', new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const port = boundPort(seen)
      if (port !== undefined) { clearInterval(timer); resolve(port) }
    }, 25)
    child.once('exit', (code) => { clearInterval(timer); reject(new Error(`server-everything exited ${code}: ${seen}`)) })
  })).catch((err: unknown) => { child.kill('SIGKILL'); throw err })
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close () {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await within(3_000, 'server-everything stop', exited).catch(() => child.kill('SIGKILL'))
      }
      log.end()
    },
  }
}

export interface RunResult { readonly code: number | null; readonly timedOut: boolean; readonly stdout: string; readonly stderr: string }

/** Run the conformance CLI with `args`; SIGKILL it after `timeoutMs`. */
export async function conformance (args: string[], timeoutMs: number): Promise<RunResult> {
  const child = track(spawn(process.execPath, [conformanceEntry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (err) => { stderr += `\nspawn error: ${err.message}`; resolve(null) })
    child.once('close', (c) => resolve(c))
  })
  clearTimeout(timer)
  return { code, timedOut, stdout, stderr }
}

/** `conformance list --server`: every server scenario, pending ones included. */
export async function listServerScenarios (): Promise<string[]> {
  const { code, stdout, stderr } = await conformance(['list', '--server'], 30_000)
  const names = [...stdout.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1] as string)
  if (code !== 0 || names.length === 0) throw new Error(`conformance list --server failed (${code}): ${stderr}`)
  return names
}

/** One check as the CLI writes it to checks.json. */
export interface Check {
  readonly id: string
  readonly name?: string
  readonly status: string // SUCCESS | FAILURE | WARNING | INFO | SKIPPED
  readonly errorMessage?: string
  readonly details?: unknown
}
export type Outcome = 'PASS' | 'WARN' | 'FAIL' | 'ERROR' | 'TIMEOUT'
export interface ScenarioResult {
  readonly scenario: string
  readonly outcome: Outcome
  readonly checks: readonly Check[]
  readonly exitCode: number | null
  readonly ms: number
  readonly note?: string
}

/**
 * `conformance server --url <url> --scenario <scenario> -o <outDir>`: the CLI writes
 * `<outDir>/server-<scenario>-<timestamp>/checks.json` and exits 1 when any check is a FAILURE.
 */
export async function runScenario (url: string, scenario: string, outDir: string, timeoutMs: number): Promise<ScenarioResult> {
  const started = Date.now()
  const run = await conformance(['server', '--url', url, '--scenario', scenario, '-o', outDir], timeoutMs)
  const ms = Date.now() - started
  const tail = (run.stderr.trim() || run.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)
  if (run.timedOut) return { scenario, outcome: 'TIMEOUT', checks: [], exitCode: run.code, ms, note: tail }
  const dir = (await readdir(outDir).catch(() => [])).find((d) => d.startsWith(`server-${scenario}-`))
  if (dir === undefined) return { scenario, outcome: 'ERROR', checks: [], exitCode: run.code, ms, note: tail }
  const checks = JSON.parse(await readFile(join(outDir, dir, 'checks.json'), 'utf8')) as Check[]
  const has = (status: string): boolean => checks.some((c) => c.status === status)
  const outcome: Outcome = has('FAILURE') ? 'FAIL' : has('WARNING') ? 'WARN' : 'PASS'
  return { scenario, outcome, checks, exitCode: run.code, ms }
}
