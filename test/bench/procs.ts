/**
 * Child processes of the bench: every one is recorded by PID and stopped by PID — on normal
 * exit, on an error, on SIGINT/SIGTERM/SIGHUP, and (last resort, synchronously) on process exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync, rmSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Proc {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number
  readonly logFile: string
  /** resolves with the exit code (or signal name) when the process ends */
  readonly exited: Promise<number | string>
}

export interface SpawnOptions {
  /** CPU list for `taskset -c` (omit: not pinned) */
  readonly cpu?: string
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** file that receives stdout and stderr */
  readonly logFile: string
  /**
   * Write stdout/stderr into a pipe read by `cat` pinned to this CPU, which appends to logFile —
   * as a container runtime reads a container's stdout — instead of straight into the file (omit:
   * the file itself is the child's stdout). The pipe is a FIFO (`logFile.fifo`), as containerd's
   * shim gives a container's stdout, not the socket pair Node's `stdio: 'pipe'` would make: a
   * 4 KiB write into a UNIX socket cost the gateway ~12 µs more per request than into a pipe,
   * measured side by side (two gateways, the same audit lines).
   */
  readonly logCollectorCpu?: string
}

export class ProcessGroup {
  readonly #procs = new Set<Proc>()
  #installed = false

  /** Spawn `command args…`, through `taskset -c CPU` when pinned (taskset execs: same PID). */
  spawn (name: string, command: string, args: readonly string[], options: SpawnOptions): Proc {
    let fifo: string | undefined
    if (options.logCollectorCpu !== undefined) {
      fifo = `${options.logFile}.fifo`
      rmSync(fifo, { force: true })
      execFileSync('mkfifo', [fifo])
      this.spawn(`${name} log collector`, 'cat', [fifo], { cpu: options.logCollectorCpu, logFile: options.logFile })
    }
    // Read-write: opening a FIFO write-only would block until `cat` has opened it. `cat` sees EOF
    // when the child, the last holder of a write end, is gone.
    const fd = openSync(fifo ?? options.logFile, fifo === undefined ? 'a' : 'r+')
    const [file, argv] = options.cpu === undefined ? [command, [...args]] : ['taskset', ['-c', options.cpu, command, ...args]]
    let child: ChildProcess
    try {
      child = spawn(file, argv, { stdio: ['ignore', fd, fd], env: options.env ?? process.env, cwd: options.cwd })
    } finally {
      closeSync(fd)
    }
    if (child.pid === undefined) throw new Error(`could not start ${name} (${file})`)
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'))
      child.once('error', (err) => resolve(`error: ${err.message}`))
    })
    const proc: Proc = { name, child, pid: child.pid, logFile: options.logFile, exited }
    this.#procs.add(proc)
    void exited.then(() => this.#procs.delete(proc))
    return proc
  }

  running (proc: Proc): boolean {
    return this.#procs.has(proc) && proc.child.exitCode === null && proc.child.signalCode === null
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  async stop (proc: Proc, graceMs = 5_000): Promise<number | string> {
    if (!this.running(proc)) return await proc.exited
    proc.child.kill('SIGTERM')
    const timer = setTimeout(() => { if (this.running(proc)) proc.child.kill('SIGKILL') }, graceMs)
    try {
      return await proc.exited
    } finally {
      clearTimeout(timer)
    }
  }

  async stopAll (): Promise<void> {
    await Promise.all([...this.#procs].reverse().map((p) => this.stop(p)))
  }

  /** Synchronous last resort (process 'exit'): SIGKILL whatever is still recorded. */
  killAllSync (): void {
    for (const p of this.#procs) {
      try { p.child.kill('SIGKILL') } catch { /* already gone */ }
    }
  }

  /** Stop every child on signals and on exit; `onSignal` runs first (e.g. to print a note). */
  installCleanup (onSignal: (signal: string) => void, onStopped: () => void = () => {}): void {
    if (this.#installed) return
    this.#installed = true
    process.once('exit', () => this.killAllSync())
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        onSignal(signal)
        const hard = setTimeout(() => { this.killAllSync(); process.exit(130) }, 8_000)
        hard.unref()
        void this.stopAll().finally(() => {
          try { onStopped() } catch { /* best effort */ }
          process.exit(130)
        })
      })
    }
  }
}

/** Last `lines` lines of a log file (for error reports). */
export function tail (file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** Poll `check` until it returns true, or throw after `timeoutMs` (or when `proc` dies). */
export async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs: number, proc?: Proc, group?: ProcessGroup): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc !== undefined && group !== undefined && !group.running(proc)) {
      throw new Error(`${proc.name} exited before ${what}:\n${tail(proc.logFile)}`)
    }
    try {
      if (await check()) return
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${proc === undefined ? '' : `:\n${tail(proc.logFile)}`}`)
    await sleep(100)
  }
}

/** utime+stime in clock ticks (CLK_TCK = 100 on Linux), or undefined when the process is gone. */
export function cpuTicks (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // after "pid (comm) ": state is field 3 → index 0; utime is field 14 → index 11, stime 15 → 12
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return undefined
  }
}

/** VmRSS in bytes, or undefined when the process is gone. */
export function rssBytes (pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

/** A process and its direct children (nginx: master + worker). */
export function withChildren (pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    return [pid, ...(kids === '' ? [] : kids.split(/\s+/).map(Number))]
  } catch {
    return [pid]
  }
}

export const CLOCK_TICK_US = 10_000

/** Per-CPU process time (user+nice+system) and idle, in ticks, from /proc/stat. */
export function cpuTimes (cpu: number): { busy: number; idle: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
    if (line === undefined) return undefined
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    return { busy: f[0]! + f[1]! + f[2]!, idle: f[3]! + f[4]! }
  } catch {
    return undefined
  }
}
