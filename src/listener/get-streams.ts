import type { ServerResponse } from 'node:http'

/**
 * The GET streams open to clients (Streamable HTTP's server-to-client channel). A draining
 * replica ends them at once — a client reopens its GET stream at another replica, losing nothing
 * (a resumable stream resumes with Last-Event-ID) — so that the drain waits only for requests in
 * flight, not for streams that would stay open for hours.
 */
export class GetStreams {
  readonly #open = new Set<ServerResponse>()
  #draining = false
  /** one listener for every stream (`this` is the response): no closure per stream */
  readonly #closed: (this: ServerResponse) => void

  constructor () {
    const open = this.#open
    this.#closed = function closed () { open.delete(this) }
  }

  track (res: ServerResponse): void {
    if (this.#draining) {
      res.destroy()
      return
    }
    this.#open.add(res)
    // `on`, not `once`: a response closes once, and `once` wraps every listener in a closure of its own
    res.on('close', this.#closed)
  }

  get size (): number {
    return this.#open.size
  }

  /** End every open GET stream, and any opened from now on. */
  drain (): void {
    this.#draining = true
    for (const res of this.#open) {
      if (res.headersSent) res.end()
      else res.destroy()
    }
  }
}
