import { randomUUID } from 'node:crypto'
import type { EventStore, EventId, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

/** Events kept per session by default: count and size, whichever is reached first. */
export const EVENT_LOG_MAX_EVENTS = 1000
export const EVENT_LOG_MAX_BYTES = 4 * 1024 * 1024

/**
 * Bounded per-session event log, so a client of a bridged (stdio or legacy SSE) upstream can
 * resume a broken stream with Last-Event-ID (Streamable HTTP "Resumability and Redelivery").
 * The oldest events fall off once `maxEvents` are kept or they add up to more than `maxBytes`
 * (sized by `sizeOf`, characters of JSON): a count alone would let an upstream's large messages
 * hold a gigabyte per session. A resume from a forgotten id replays nothing.
 */
export class BoundedEventStore implements EventStore {
  readonly #events = new Map<EventId, { streamId: StreamId; message: JSONRPCMessage; size: number }>()
  readonly #maxEvents: number
  readonly #maxBytes: number
  readonly #sizeOf: (message: JSONRPCMessage) => number
  readonly #prefix = randomUUID()
  #seq = 0
  #bytes = 0

  constructor (options: { readonly maxEvents?: number; readonly maxBytes?: number; readonly sizeOf?: (message: JSONRPCMessage) => number } = {}) {
    this.#maxEvents = options.maxEvents ?? EVENT_LOG_MAX_EVENTS
    this.#maxBytes = options.maxBytes ?? EVENT_LOG_MAX_BYTES
    this.#sizeOf = options.sizeOf ?? ((message) => JSON.stringify(message).length)
  }

  async storeEvent (streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const eventId = `${this.#prefix}.${++this.#seq}`
    const size = this.#sizeOf(message)
    this.#events.set(eventId, { streamId, message, size })
    this.#bytes += size
    while (this.#events.size > this.#maxEvents || (this.#bytes > this.#maxBytes && this.#events.size > 0)) {
      const [oldest, event] = this.#events.entries().next().value!
      this.#events.delete(oldest)
      this.#bytes -= event.size
    }
    return eventId
  }

  async getStreamIdForEventId (eventId: EventId): Promise<StreamId | undefined> {
    return this.#events.get(eventId)?.streamId
  }

  async replayEventsAfter (lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const start = this.#events.get(lastEventId)
    if (start === undefined) return ''
    let found = false
    for (const [eventId, event] of this.#events) {
      if (found && event.streamId === start.streamId) await send(eventId, event.message)
      if (eventId === lastEventId) found = true
    }
    return start.streamId
  }
}
