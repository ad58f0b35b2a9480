import { randomUUID } from 'node:crypto'
import type { EventStore, EventId, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

/**
 * Bounded per-session event log, so a client of a bridged (stdio or legacy SSE) upstream can
 * resume a broken stream with Last-Event-ID (Streamable HTTP "Resumability and Redelivery").
 * The oldest events fall off once `max` is reached; a resume from a forgotten id replays nothing.
 */
export class BoundedEventStore implements EventStore {
  readonly #events = new Map<EventId, { streamId: StreamId; message: JSONRPCMessage }>()
  readonly #max: number
  readonly #prefix = randomUUID()
  #seq = 0

  constructor (max = 1000) {
    this.#max = max
  }

  async storeEvent (streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const eventId = `${this.#prefix}.${++this.#seq}`
    this.#events.set(eventId, { streamId, message })
    if (this.#events.size > this.#max) {
      const oldest = this.#events.keys().next()
      if (oldest.done !== true) this.#events.delete(oldest.value)
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
