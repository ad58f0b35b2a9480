import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Debian's redis-server; CI installs it (.ci/run) */
export const REDIS_SERVER_BIN = process.env.PORTCULLIS_TEST_REDIS_SERVER ?? '/usr/bin/redis-server'

export interface RunningRedis {
  /** redis://127.0.0.1:PORT */
  readonly url: string
  readonly port: number
  /** SIGTERM (SIGKILL after 3 s), then delete its directory. Idempotent. */
  stop (): Promise<void>
  /** SIGKILL: connections drop at once */
  kill (): Promise<void>
  /** SIGSTOP: connections stay open and nothing answers */
  pause (): void
  /** SIGCONT */
  resume (): void
  /** a fresh, empty server on the same port (killing the current one if it runs) */
  restart (): Promise<void>
}

/**
 * A real redis-server of our own, without persistence, on a random loopback port. The port is
 * chosen by trying: a random one, and another when Redis says it is taken (probing with a
 * throwaway listener would race with other test files doing the same).
 */
export async function startRedis (): Promise<RunningRedis> {
  if (!existsSync(REDIS_SERVER_BIN)) throw new Error(`redis-server not found at ${REDIS_SERVER_BIN} (apt-get install redis-server, or set PORTCULLIS_TEST_REDIS_SERVER)`)
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-redis-'))
  let child: ChildProcess | undefined
  let port = 0
  for (let attempt = 0; attempt < 20 && child === undefined; attempt++) {
    port = 20000 + Math.floor(Math.random() * 40000)
    child = await launch(port, dir)
  }
  if (child === undefined) throw new Error('redis-server: no free port after 20 tries')
  let current: ChildProcess = child
  let stopped = false
  const killOnExit = (): void => { current.kill('SIGKILL') }
  process.once('exit', killOnExit)

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (current.exitCode !== null || current.signalCode !== null) return
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()))
    current.kill('SIGCONT')
    current.kill(signal)
    const timer = setTimeout(() => current.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop () {
      if (stopped) return
      stopped = true
      await end('SIGTERM')
      process.removeListener('exit', killOnExit)
      await rm(dir, { recursive: true, force: true })
    },
    kill: () => end('SIGKILL'),
    pause () { current.kill('SIGSTOP') },
    resume () { current.kill('SIGCONT') },
    async restart () {
      await end('SIGKILL')
      // the port was just released; another process may take it in between, rarely: retry briefly
      for (let attempt = 0; attempt < 10; attempt++) {
        const next = await launch(port, dir)
        if (next !== undefined) {
          current = next
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      throw new Error(`redis-server: port ${port} stayed taken`)
    },
  }
}

/** the running server, or undefined when the port is taken */
async function launch (port: number, dir: string): Promise<ChildProcess | undefined> {
  const child = spawn(REDIS_SERVER_BIN, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice',
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  return await new Promise<ChildProcess | undefined>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`redis-server did not start within 10 s:\n${output}`))
    }, 10_000)
    const settle = (value: ChildProcess | undefined): void => {
      clearTimeout(timer)
      child.stdout?.removeListener('data', onData)
      child.stderr?.removeListener('data', onData)
      child.removeListener('exit', onExit)
      // keep draining the pipes so the server never blocks on a full one
      child.stdout?.resume()
      child.stderr?.resume()
      resolve(value)
    }
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) settle(child)
      else if (output.includes('Address already in use')) {
        child.kill('SIGKILL')
        settle(undefined)
      }
    }
    const onExit = (): void => {
      if (output.includes('Address already in use')) settle(undefined)
      else {
        clearTimeout(timer)
        reject(new Error(`redis-server exited before it was ready:\n${output}`))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}
