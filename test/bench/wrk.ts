/**
 * One wrk run: `taskset -c CPU wrk -t1 -cC -dDs --latency -s SCRIPT URL [-- ARGS…]`, parsed from the
 * BENCH_RESULT line that the script's done() prints (post.lua, rotate-auth.lua). Bounded: killed at duration + 30 s.
 */
import { spawn, type ChildProcess } from 'node:child_process'

export interface WrkResult {
  readonly requests: number
  readonly durationUs: number
  readonly bytes: number
  /** req/s over wrk's measured duration */
  readonly rps: number
  /** latencies in ms */
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly mean: number
  readonly max: number
  /** responses with status >= 400 (wrk's "Non-2xx or 3xx responses") */
  readonly non2xx: number
  readonly socket: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number }
  /** non2xx + every socket error */
  readonly errors: number
  /** every field of the script's BENCH_RESULT line (a script may add its own, e.g. rotate-auth.lua's token counts) */
  readonly fields: Readonly<Record<string, number>>
  readonly raw: string
}

export interface WrkOptions {
  readonly wrk: string
  readonly url: string
  readonly connections: number
  readonly durationS: number
  readonly script: string
  /** arguments for the script's init(args) (after `--`) */
  readonly args?: readonly string[]
  /** taskset CPU list for wrk (Protocol P: "0") */
  readonly cpu: string
  /** kill switch: the bench aborts on a signal */
  readonly signal?: AbortSignal
}

/** Registered by the caller so a running wrk is stopped on SIGINT as well. */
export const runningWrk = new Set<ChildProcess>()

export function runWrk (o: WrkOptions): Promise<WrkResult> {
  const args = ['-c', o.cpu, o.wrk, '-t1', `-c${o.connections}`, `-d${o.durationS}s`, '--latency', '-s', o.script, o.url, ...(o.args === undefined || o.args.length === 0 ? [] : ['--', ...o.args])]
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    runningWrk.add(child)
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.durationS + 30) * 1000)
    const onAbort = (): void => { child.kill('SIGKILL') }
    o.signal?.addEventListener('abort', onAbort, { once: true })
    child.once('error', (e) => { clearTimeout(timer); runningWrk.delete(child); reject(e) })
    child.once('close', (code, sig) => {
      clearTimeout(timer)
      runningWrk.delete(child)
      o.signal?.removeEventListener('abort', onAbort)
      const line = /^BENCH_RESULT (\{.*\})$/m.exec(out)
      if (code !== 0 || line === null) {
        reject(new Error(`wrk ${args.slice(2).join(' ')} failed (exit ${code ?? sig}):\n${out}${err}`))
        return
      }
      const r = JSON.parse(line[1]!) as Record<string, number>
      const n = (k: string): number => r[k] ?? 0
      const socket = { connect: n('connect'), read: n('read'), write: n('write'), timeout: n('timeout') }
      resolve({
        requests: n('requests'),
        durationUs: n('durationUs'),
        bytes: n('bytes'),
        rps: n('requests') / (n('durationUs') / 1e6),
        p50: n('p50') / 1000,
        p90: n('p90') / 1000,
        p99: n('p99') / 1000,
        mean: n('mean') / 1000,
        max: n('max') / 1000,
        non2xx: n('status'),
        socket,
        errors: n('status') + socket.connect + socket.read + socket.write + socket.timeout,
        fields: r,
        raw: out.replace(/^BENCH_RESULT .*\n?/m, ''),
      })
    })
  })
}
