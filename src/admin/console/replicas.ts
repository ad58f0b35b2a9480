import type { Store } from '../../store/store.ts'
import type { ReplicaView } from './sources.ts'

const SET = 'replicas'
const EVERY_MS = 5_000
const HOLDS_MS = 15_000

interface Member {
  readonly advertiseUrl: string
  readonly version: string
  readonly startedAt: string
}

/**
 * The replicas sharing the store (design §5a): each announces itself every 5 s in the broadcast
 * set `replicas`, valid for 15 s, and lists the members it hears whose announcement still holds.
 */
export class Replicas {
  readonly #store: Store
  readonly #heard = new Map<string, { member: Member; until: number }>()
  readonly #startedAt = new Date().toISOString()
  readonly #version: string
  #self: string | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (store: Store, version: string) {
    this.#store = store
    this.#version = version
    store.subscribe(SET, (text, until) => { this.#hear(text, until) })
  }

  /** Announce `advertiseUrl` now and every 5 s until stop(). */
  start (advertiseUrl: string): void {
    this.#self = advertiseUrl
    const member = JSON.stringify({ advertiseUrl, version: this.#version, startedAt: this.#startedAt } satisfies Member)
    const beat = (): void => {
      this.#store.broadcast(SET, member, Date.now() + HOLDS_MS).catch(() => {}) // the store's own state tells it is down
    }
    beat()
    this.#timer = setInterval(beat, EVERY_MS)
    this.#timer.unref()
    // the store connects in the background: the first beat may have found it down; announce again
    // as soon as it answers, rather than a period later
    this.#store.onStateChange((up) => { if (up && this.#timer !== undefined) beat() })
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  list (): ReplicaView[] {
    const now = Date.now()
    const out: ReplicaView[] = []
    for (const [url, { member, until }] of this.#heard) {
      if (until <= now) {
        this.#heard.delete(url)
        continue
      }
      out.push({ ...member, expiresAt: new Date(until).toISOString(), self: url === this.#self })
    }
    return out.sort((a, b) => a.advertiseUrl.localeCompare(b.advertiseUrl))
  }

  /** A member as another replica wrote it: only well-formed ones, at most 1000 remembered. */
  #hear (text: string, until: number): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    if (typeof parsed !== 'object' || parsed === null) return
    const { advertiseUrl, version, startedAt } = parsed as Record<string, unknown>
    if (typeof advertiseUrl !== 'string' || typeof version !== 'string' || typeof startedAt !== 'string') return
    const known = this.#heard.get(advertiseUrl)
    if (known === undefined && this.#heard.size >= 1000) return
    if (known !== undefined && known.until >= until && known.member.startedAt === startedAt) return
    this.#heard.set(advertiseUrl, { member: { advertiseUrl, version, startedAt }, until })
  }
}
