import t from 'tap'
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { newExchange, NO_RESPONSE_STAGES } from '../../src/mcp/exchange.ts'
import type { ServerConfig } from '../../src/config/types.ts'
import type { CompiledPolicy } from '../../src/policy/decide.ts'

const server = { name: 'open' } as unknown as ServerConfig
const policy = {} as unknown as CompiledPolicy
const response = (method: string): ServerResponse => {
  const req = new IncomingMessage(new Socket())
  req.method = method
  return new ServerResponse(req)
}

t.test('a POST exchange tracks its requests in collections of its own', async (t) => {
  const a = newExchange(server, policy, NO_RESPONSE_STAGES, response('POST'))
  const b = newExchange(server, policy, NO_RESPONSE_STAGES, response('POST'))
  a.pending.set(1, 'tools/call')
  a.records.set(1, {} as never)
  a.notificationSpans.push({} as never)
  t.equal(b.pending.size, 0)
  t.equal(b.records.size, 0)
  t.equal(b.notificationSpans.length, 0)
  t.not(a.cancels, b.cancels)
})

t.test('exchanges without messages (GET, DELETE) share empty collections that refuse additions', async (t) => {
  const get = newExchange(server, policy, NO_RESPONSE_STAGES, response('GET'))
  const del = newExchange(server, policy, NO_RESPONSE_STAGES, response('DELETE'))
  t.equal(get.pending, del.pending)
  t.equal(get.records, del.records)
  t.equal(get.pending.size, 0)
  t.equal(get.pending.get(1), undefined)
  t.equal(get.pending.delete(1), false)
  get.pending.clear()
  t.same([...get.records.values()], [])
  t.throws(() => get.pending.set(1, 'tools/call'), TypeError)
  t.throws(() => get.records.set(1, {} as never), TypeError)
  t.throws(() => get.notificationSpans.push({} as never), TypeError)
  t.equal(get.pending.size, 0, 'nothing was added')
  // what a GET stream does register: how to cancel its upstream request
  get.cancels.push(() => {})
  t.equal(del.cancels.length, 0)
  t.same(get.messages, [])
  t.same(get.operations, [])
})
