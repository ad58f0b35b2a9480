import { Agent, createServer, request, type ClientRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Balancer {
  /** http://127.0.0.1:PORT */
  readonly url: string
  readonly port: number
  /** replace the targets (base URLs such as a gateway's `url`) */
  setTargets (urls: string[]): void
  /** how many requests each current target was sent, in the targets' order */
  requestsPerTarget (): number[]
  close (): Promise<void>
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

function endToEnd (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = String(headers.connection ?? '').toLowerCase().split(',').map((h) => h.trim())
  const kept: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name) && !named.includes(name)) kept[name] = value
  }
  return kept
}

/**
 * A round-robin reverse proxy on 127.0.0.1 and a port the OS picks, as a load balancer without
 * affinity: every request goes to the next target, even on a kept-alive client connection.
 * Bodies stream both ways unbuffered (SSE included); Host is passed on as the client sent it; a
 * target that cannot be reached is a 502. Closing either side closes the other.
 */
export async function startBalancer (targets: string[] | (() => string[]) = []): Promise<Balancer> {
  let current = targets
  const list = (): string[] => typeof current === 'function' ? current() : current
  const counts = new Map<string, number>()
  let next = 0
  const agent = new Agent({ keepAlive: true })
  const upstreams = new Set<ClientRequest>()

  const server = createServer((req, res) => {
    const all = list()
    if (all.length === 0) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no targets\n')
      return
    }
    const target = all[next++ % all.length] as string
    counts.set(target, (counts.get(target) ?? 0) + 1)
    const base = new URL(target)
    const upstream = request({
      agent,
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      method: req.method,
      path: req.url,
      headers: endToEnd(req.headers),
    })
    upstreams.add(upstream)
    upstream.once('close', () => upstreams.delete(upstream))
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers))
      res.flushHeaders()
      answer.pipe(res)
      // the target went away mid-response: so does the client's response
      answer.once('aborted', () => res.destroy())
      answer.once('error', () => res.destroy())
    })
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n')
      else res.destroy()
    })
    // the client went away before the end: so does the upstream request
    res.once('close', () => { if (!res.writableFinished) upstream.destroy() })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setTargets (urls) { current = [...urls] },
    requestsPerTarget: () => list().map((target) => counts.get(target) ?? 0),
    async close () {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      for (const upstream of upstreams) upstream.destroy()
      agent.destroy()
      await closed
    },
  }
}
