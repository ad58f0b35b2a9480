// The bridged sessions' event log (src/upstream/bridge/event-store.ts): what a client can resume
// with Last-Event-ID, bounded by count and by size so an upstream's large messages cannot hold a
// gigabyte per session.
import t from 'tap'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { BoundedEventStore, EVENT_LOG_MAX_BYTES, EVENT_LOG_MAX_EVENTS } from '../../src/upstream/bridge/event-store.ts'

const note = (i: number, size = 0): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: `${i}:${'x'.repeat(size)}` } })
const dataOf = (m: JSONRPCMessage): string => ((m as unknown as { params: { data: string } }).params.data).split(':')[0]!

/** Replay everything after `from` on its stream: the `i`s of the messages sent. */
async function replayed (store: BoundedEventStore, from: string): Promise<{ stream: string; sent: string[] }> {
  const sent: string[] = []
  const stream = await store.replayEventsAfter(from, { send: async (_id, message) => { sent.push(dataOf(message)) } })
  return { stream, sent }
}

const cases = [
  { name: 'small messages: the count bounds it', options: { maxEvents: 5 }, count: 12, size: 10, kept: 5 },
  { name: 'large messages: the size bounds it', options: { maxBytes: 10_000 }, count: 12, size: 3_000, kept: 3 },
  { name: 'both: the first reached wins', options: { maxEvents: 4, maxBytes: 10_000 }, count: 12, size: 100, kept: 4 },
  { name: 'one message larger than the bound is not kept', options: { maxBytes: 1_000 }, count: 1, size: 5_000, kept: 0 },
  { name: 'the defaults: 1000 events', options: {}, count: EVENT_LOG_MAX_EVENTS + 10, size: 10, kept: EVENT_LOG_MAX_EVENTS },
  { name: 'the defaults: 4 MiB', options: {}, count: 300, size: 64 * 1024, kept: Math.floor(EVENT_LOG_MAX_BYTES / (64 * 1024 + 80)) },
] as const

for (const c of cases) {
  t.test(c.name, async (t) => {
    const store = new BoundedEventStore(c.options)
    const ids: string[] = []
    for (let i = 0; i < c.count; i++) ids.push(await store.storeEvent('get', note(i, c.size)))
    const known = []
    for (const id of ids) if (await store.getStreamIdForEventId(id) !== undefined) known.push(id)
    t.equal(known.length, c.kept, `${c.kept} of ${c.count} kept`)
    t.same(known, ids.slice(ids.length - c.kept), 'the newest ones')
    if (c.kept >= 2) {
      const { stream, sent } = await replayed(store, known[0]!)
      t.equal(stream, 'get')
      t.same(sent, ids.slice(ids.length - c.kept + 1).map((_id, k) => String(c.count - c.kept + 1 + k)), 'a resume from the oldest kept replays the rest, in order')
    }
    if (c.kept < c.count) t.same(await replayed(store, ids[0]!), { stream: '', sent: [] }, 'a resume from a forgotten id replays nothing')
  })
}

t.test('a resume replays only the events of its own stream', async (t) => {
  const store = new BoundedEventStore()
  const first = await store.storeEvent('get', note(0))
  await store.storeEvent('post-1', note(1))
  await store.storeEvent('get', note(2))
  await store.storeEvent('post-1', note(3))
  t.same(await replayed(store, first), { stream: 'get', sent: ['2'] })
})

t.test('sizeOf is what is counted', async (t) => {
  const sized: JSONRPCMessage[] = []
  const store = new BoundedEventStore({ maxBytes: 100, sizeOf: (m) => { sized.push(m); return 40 } })
  const ids = [await store.storeEvent('get', note(0)), await store.storeEvent('get', note(1)), await store.storeEvent('get', note(2))]
  t.equal(sized.length, 3, 'asked once per event')
  t.equal(await store.getStreamIdForEventId(ids[0]!), undefined, 'three of 40 are over 100: the oldest went')
  t.equal(await store.getStreamIdForEventId(ids[1]!), 'get')
})
