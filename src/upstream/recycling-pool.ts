import { Pool, type Dispatcher } from 'undici'

/**
 * Clients without a connection a pool may keep before it is recycled. A Client costs a couple of
 * KiB of heap whether connected or not; below this many, keeping them is cheaper than the churn.
 */
export const IDLE_CLIENTS = 64

/**
 * An undici Pool that gives back what a burst of connections left behind. A Pool creates one
 * Client per connection it needs at once and keeps every one of them for its whole life — after
 * 5,000 GET streams have come and gone, 5,000 Clients without a connection, none of them ever
 * needed again until the next such burst. Here, once more than `idleClients` of the pool's
 * Clients have lost their connection (the stream they carried ended, or they idled out), new
 * requests go to a new Pool and the old one is closed: the requests it still carries finish on
 * it (undici's close() waits for them), and then it and its Clients are garbage.
 *
 * Only what a busy pool never accumulates is recycled: under steady load the pool's Clients stay
 * connected (keep-alive) and are reused. The cost of a recycle is that the next requests open
 * new connections, the old pool's idle keep-alive connections being closed with it.
 */
export class RecyclingPool {
  readonly #origin: string
  readonly #options: Pool.Options
  readonly #idleClients: number
  #pool: Pool
  /** pools recycled and still finishing their requests */
  readonly #retiring = new Set<Pool>()
  #recycles = 0
  #closed = false

  constructor (origin: string, options: Pool.Options, idleClients = IDLE_CLIENTS) {
    this.#origin = origin
    this.#options = options
    this.#idleClients = idleClients
    this.#pool = this.#open()
  }

  dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.#pool.dispatch(options, handler)
  }

  /** Close when every request in flight (open streams included) has finished. */
  async close (): Promise<void> {
    this.#closed = true
    await Promise.all([this.#pool.close(), ...[...this.#retiring].map(async (p) => { await p.close() })])
    this.#retiring.clear()
  }

  /** Close now, failing the requests in flight. */
  async destroy (): Promise<void> {
    this.#closed = true
    await Promise.all([this.#pool.destroy(), ...[...this.#retiring].map(async (p) => { await p.destroy() })])
    this.#retiring.clear()
  }

  /** How many times the pool was recycled, and how many recycled pools still finish their requests. */
  get recycles (): number {
    return this.#recycles
  }

  get retiring (): number {
    return this.#retiring.size
  }

  #open (): Pool {
    const pool = new Pool(this.#origin, this.#options)
    /** its Clients that have lost their connection (and not connected again) */
    const down = new Set<Dispatcher>()
    // targets: [pool, client]
    pool.on('connect', (_origin, targets) => { down.delete(targets[targets.length - 1]!) })
    pool.on('connectionError', (_origin, targets) => { down.delete(targets[targets.length - 1]!) }) // the pool drops that Client
    pool.on('disconnect', (_origin, targets) => {
      down.add(targets[targets.length - 1]!)
      if (down.size > this.#idleClients && pool === this.#pool && !this.#closed) this.#recycle()
    })
    return pool
  }

  #recycle (): void {
    const old = this.#pool
    this.#recycles++
    this.#pool = this.#open()
    this.#retiring.add(old)
    old.close().catch(() => {}).finally(() => this.#retiring.delete(old))
  }
}
