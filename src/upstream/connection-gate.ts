import { GatewayError } from '../errors.ts'
import type { Release } from '../limits/concurrency-limiter.ts'

interface Waiter {
  readonly resolve: (release: Release) => void
  readonly reject: (err: GatewayError) => void
  readonly timer: NodeJS.Timeout
}

/** A request waiting for a connection; `cancel()` when its client went away. */
export interface Waiting {
  readonly ready: Promise<Release>
  cancel (): void
}

/**
 * The upstream connections a dispatcher has, counted here: undici's Pool queues the requests
 * beyond its `connections` without bound, so a request takes a permit first and holds it until
 * its response ends. With no permit free it waits in a FIFO for at most `waitMs`, then is refused
 * (503 + Retry-After); a waiter whose client went away leaves the queue and is never sent.
 */
export class ConnectionGate {
  readonly #max: number
  #busy = 0
  /** insertion-ordered: the first waiter is the oldest */
  readonly #waiters = new Set<Waiter>()

  constructor (max: number) {
    this.#max = max
  }

  /** A permit now, or undefined when every connection is taken. */
  tryAcquire (): Release | undefined {
    if (this.#busy >= this.#max) return undefined
    this.#busy++
    return this.#release()
  }

  /** Wait for a permit, at most `waitMs`. */
  wait (waitMs: number): Waiting {
    let waiter!: Waiter
    const ready = new Promise<Release>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new GatewayError('PORTCULLIS_ERR_UPSTREAM_BUSY', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) } }))
      }, waitMs)
      waiter = { resolve, reject, timer }
    })
    this.#waiters.add(waiter)
    return {
      ready,
      cancel: () => {
        if (!this.#waiters.delete(waiter)) return
        clearTimeout(waiter.timer)
        waiter.reject(new GatewayError('PORTCULLIS_ERR_CLIENT_CLOSED'))
      },
    }
  }

  get waiting (): number {
    return this.#waiters.size
  }

  #release (): Release {
    let released = false
    return () => {
      if (released) return
      released = true
      // The permit passes straight to the oldest waiter, if any.
      const next = this.#waiters.values().next()
      if (next.done === true) {
        this.#busy--
        return
      }
      this.#waiters.delete(next.value)
      clearTimeout(next.value.timer)
      next.value.resolve(this.#release())
    }
  }
}
