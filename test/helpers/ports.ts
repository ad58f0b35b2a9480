import { createServer, type Server } from 'node:net'

/**
 * A loopback port that refuses connections: reserved (below 1024), so listen(0) never hands it
 * out and no parallel test can take it; nothing listens there. For "the upstream is down" cases.
 * Not 1 or 9: `:1023` does not turn up by chance in a response body.
 */
export const CLOSED_PORT = 1023

/**
 * `node --import REPORT_BOUND_PORT …`: every server the child listens on writes `bound port N`
 * to its stderr once listening. For a child that takes its port from its environment and prints
 * only what it was given (server-everything): give it port 0, read the port with boundPort().
 */
export const REPORT_BOUND_PORT = `data:text/javascript,${encodeURIComponent(`import net from 'node:net'
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  this.once('listening', () => {
    const address = this.address()
    if (address !== null && typeof address === 'object') process.stderr.write('bound port ' + address.port + '\\n')
  })
  return listen.apply(this, args)
}`)}`

/** The first port a child started with REPORT_BOUND_PORT reported in `stderr`. */
export function boundPort (stderr: string): number | undefined {
  const match = /^bound port (\d+)$/m.exec(stderr)
  return match === null ? undefined : Number(match[1])
}

/** How many times a start that lost a port to another process is tried, with fresh ports each time. */
export const PORT_ATTEMPTS = 5

/** Whether `err` (an error, or the output of a process that failed to start) says a port was taken. */
export function addressInUse (err: unknown): boolean {
  if (typeof err === 'string') return /EADDRINUSE|address already in use|is already in use/i.test(err)
  if (typeof err !== 'object' || err === null) return false
  const { code, message, cause } = err as { code?: unknown, message?: unknown, cause?: unknown }
  return code === 'EADDRINUSE' || (typeof message === 'string' && addressInUse(message)) || (cause !== undefined && addressInUse(cause))
}

/**
 * For what must know its own port before it listens (a publicUrl, an issuer URL, PORT in a
 * child's environment): `start(...ports)` with `count` distinct ports that were free a moment ago.
 * Another process may take one in between: when `start` fails with an error addressInUse()
 * recognizes, it runs again with fresh ports, at most PORT_ATTEMPTS times. `start` must release
 * whatever it did start before it throws. Anything that can listen on port 0 and report the bound
 * port should do that instead.
 */
export async function withFreePorts<T> (count: number, start: (...ports: number[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = await probePorts(count)
    try {
      return await start(...ports)
    } catch (err) {
      if (attempt >= PORT_ATTEMPTS || !addressInUse(err)) throw err
    }
  }
}

/** `count` ports free right now, distinct: all held open together, then released. */
async function probePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    const ports: number[] = []
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', resolve)
      })
      const address = server.address()
      if (address === null || typeof address === 'string') throw new Error('no port')
      ports.push(address.port)
    }
    return ports
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  }
}
