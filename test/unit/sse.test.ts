import t from 'tap'
import { once } from 'node:events'
import { SseDecoder, SseEventTooLargeError, encodeSseEvent, type SseEvent } from '../../src/jsonrpc/sse.ts'
import { createSseMessageTransform } from '../../src/jsonrpc/sse-transform.ts'

const TOOLS = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"météo 😀"},{"name":"denied"}]}}'

/** Everything the decoder must handle, in one stream (after the BOM, before the unfinished tail). */
const body =
  ': welcome\n' +
  'retry: 3000\n\n' +
  'id: 1\ndata:\n\n' + // priming event
  'event: message\nid: 2\ndata: ' + TOOLS + '\n\n' +
  'data: line1\r\ndata:line2\r\ndata:  two spaces\r\n\r\n' +
  'data: cr\rid: 3\r\r' +
  ':ping\n\n' +
  'id: a\0b\ndata: nul id ignored\n\n' +
  'retry: 12x\ndata: bad retry ignored\n\n' +
  'foo: bar\n\n' +
  'data\n\n' +
  'event: e\n: inside\ndata: z\n\n' +
  'id\nevent\n\n'
const tail = 'data: unfinished'
const sample = Buffer.from('\uFEFF' + body + tail)

const expected: SseEvent[] = [
  { type: 'comment', text: 'welcome' },
  { type: 'event', data: '', hasData: false, retry: 3000 },
  { type: 'event', id: '1', data: '', hasData: true },
  { type: 'event', event: 'message', id: '2', data: TOOLS, hasData: true },
  { type: 'event', data: 'line1\nline2\n two spaces', hasData: true },
  { type: 'event', id: '3', data: 'cr', hasData: true },
  { type: 'comment', text: 'ping' },
  { type: 'event', data: 'nul id ignored', hasData: true },
  { type: 'event', data: 'bad retry ignored', hasData: true },
  { type: 'event', data: '', hasData: false },
  { type: 'event', data: '', hasData: true },
  { type: 'event', event: 'e', data: 'z', hasData: true },
  { type: 'event', id: '', event: '', data: '', hasData: false }
]

function withoutRaw (events: SseEvent[]): SseEvent[] {
  return events.map(ev => {
    const { raw: _raw, ...rest } = ev
    return rest
  })
}

function decodeChunks (chunks: Buffer[]): SseEvent[] {
  const decoder = new SseDecoder()
  const events = chunks.flatMap(c => decoder.push(c))
  return events.concat(decoder.end())
}

t.test('decodes every kind of line', t => {
  const events = decodeChunks([sample])
  t.strictSame(withoutRaw(events), expected)
  t.equal(events.map(e => e.raw).join(''), body, 'the raw texts put together are the stream (BOM and unfinished tail aside)')
  t.end()
})

/** The events without raw, and the raw texts put together: both independent of chunking. */
function fingerprint (events: SseEvent[]): string {
  return JSON.stringify([withoutRaw(events), events.map(e => e.raw).join('')])
}

t.test('every split point gives the same events', t => {
  const whole = decodeChunks([sample])
  let mismatches = 0
  for (let k = 0; k <= sample.length; k++) {
    const split = decodeChunks([sample.subarray(0, k), sample.subarray(k)])
    if (fingerprint(split) !== fingerprint(whole)) {
      mismatches++
      t.strictSame(withoutRaw(split), withoutRaw(whole), `split at byte ${k}`)
    }
  }
  t.equal(mismatches, 0, `${sample.length + 1} split points`)
  t.equal(fingerprint(decodeChunks([...sample].map(b => Buffer.from([b])))), fingerprint(whole), 'one byte at a time')
  t.end()
})

t.test('random splits into many chunks (seeded)', t => {
  const whole = fingerprint(decodeChunks([sample]))
  let seed = 42
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  for (let round = 0; round < 300; round++) {
    const chunks: Buffer[] = []
    for (let at = 0; at < sample.length;) {
      const len = 1 + random(12)
      chunks.push(sample.subarray(at, at + len))
      at += len
    }
    const got = fingerprint(decodeChunks(chunks))
    if (got !== whole) {
      t.fail(`round ${round}`)
      break
    }
  }
  t.pass('300 random splittings')
  t.end()
})

t.test('line endings, BOM, string chunks', t => {
  const d = new SseDecoder()
  t.strictSame(withoutRaw(d.push('data: a\rdata: b\r\r')), [{ type: 'event', data: 'a\nb', hasData: true }], 'CR only')
  const crlf = new SseDecoder()
  t.strictSame(crlf.push('data: a\r'), [], 'a CR ends the line but not the event')
  t.strictSame(withoutRaw(crlf.push('\ndata: b\r\n\r\n')), [{ type: 'event', data: 'a\nb', hasData: true }], 'CRLF split across chunks is one line ending')
  const bom = new SseDecoder()
  t.strictSame(withoutRaw(bom.push('\uFEFFdata: x\n\n\uFEFFdata: y\n\n')), [
    { type: 'event', data: 'x', hasData: true },
    { type: 'event', data: '', hasData: false }
  ], 'only one leading BOM is dropped; a later one is text (and makes an unknown field)')
  const invalid = new SseDecoder()
  t.strictSame(withoutRaw(invalid.push(Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0xff, 0x0a, 0x0a]))), [{ type: 'event', data: '\uFFFD', hasData: true }], 'invalid UTF-8 becomes U+FFFD')
  t.end()
})

t.test('events are emitted as soon as their blank line arrives', t => {
  const d = new SseDecoder()
  t.strictSame(d.push('id: 1\ndata: {"a":1}\n'), [])
  t.equal(d.push('\n').length, 1, 'LF')
  t.equal(d.push('data: x\r\r').length, 1, 'CR: no waiting for a possible LF')
  t.equal(d.push('\n').length, 0, 'the LF of that CRLF is skipped, not a blank line')
  t.equal(d.push(': keep-alive\n').length, 1, 'a comment outside an event at once')
  t.strictSame(d.push('data: never finished'), [])
  t.strictSame(d.end(), [], 'an unfinished event is discarded at the end')
  t.end()
})

t.test('a pending event is capped', t => {
  const big = new SseDecoder({ maxEventLength: 100 })
  t.throws(() => big.push('data: ' + 'x'.repeat(200) + '\n'), SseEventTooLargeError)
  const lines = new SseDecoder({ maxEventLength: 100 })
  t.throws(() => { for (let k = 0; k < 50; k++) lines.push('data: 0123456789\n') }, { code: 'SSE_EVENT_TOO_LARGE', limit: 100 })
  const partial = new SseDecoder({ maxEventLength: 100 })
  t.throws(() => { for (let k = 0; k < 50; k++) partial.push('xxxxxxxxxx') }, SseEventTooLargeError, 'an endless line')
  const blank = new SseDecoder({ maxEventLength: 100 })
  t.throws(() => blank.push('\n'.repeat(101)), SseEventTooLargeError, 'endless blank lines')
  const ok = new SseDecoder({ maxEventLength: 100 })
  for (let k = 0; k < 50; k++) ok.push('data: 0123456789\n\n')
  t.pass('completed events do not count')
  t.end()
})

t.test('encodeSseEvent writes the canonical form', t => {
  t.equal(encodeSseEvent({ type: 'event', event: 'message', id: '7', retry: 10, data: '{"a":1}', hasData: true }), 'id: 7\nevent: message\nretry: 10\ndata: {"a":1}\n\n')
  t.equal(encodeSseEvent({ type: 'event', id: '7', data: '', hasData: true }), 'id: 7\ndata: \n\n', 'priming event keeps its data line')
  t.equal(encodeSseEvent({ type: 'event', id: '7', data: '', hasData: false }), 'id: 7\n\n')
  t.equal(encodeSseEvent({ type: 'event', data: 'a\nb\r\nc\rd', hasData: true }), 'data: a\ndata: b\ndata: c\ndata: d\n\n')
  t.equal(encodeSseEvent({ type: 'event', data: ' lead', hasData: true }), 'data:  lead\n\n')
  t.equal(encodeSseEvent({ type: 'comment', text: 'ping' }), ': ping\n\n')
  t.equal(encodeSseEvent({ type: 'comment', text: 'a\nb' }), ': a\n: b\n\n')
  t.equal(encodeSseEvent({ type: 'event', data: 'x', hasData: true, raw: 'ignored' }), 'data: x\n\n')
  t.throws(() => encodeSseEvent({ type: 'event', id: '1\ndata: evil', data: '', hasData: false }), TypeError)
  t.throws(() => encodeSseEvent({ type: 'event', id: 'a\0', data: '', hasData: false }), TypeError)
  t.throws(() => encodeSseEvent({ type: 'event', event: 'm\rretry: 1', data: '', hasData: false }), TypeError)
  t.throws(() => encodeSseEvent({ type: 'event', retry: 1.5, data: '', hasData: false }), TypeError)
  t.equal(encodeSseEvent({ type: 'event', data: '', hasData: false }), '', 'no fields, nothing to say')
  const decoded = decodeChunks([sample]).filter(e => e.type === 'comment' || e.hasData || e.id !== undefined || e.event !== undefined || e.retry !== undefined)
  const reencoded = decodeChunks([Buffer.from(decoded.map(encodeSseEvent).join(''))])
  t.strictSame(withoutRaw(reencoded), withoutRaw(decoded), 'decode(encode(events)) gives the events back')
  t.end()
})

async function run (input: Array<string | Buffer>, onMessage: (msg: unknown) => unknown, canonical = false): Promise<string> {
  const transform = createSseMessageTransform(onMessage, { canonical })
  const out: Buffer[] = []
  transform.on('data', (c: Buffer) => out.push(c))
  for (const chunk of input) transform.write(chunk)
  transform.end()
  await once(transform, 'end')
  return Buffer.concat(out).toString()
}

t.test('the transform emits the first event before the input ends', async t => {
  const transform = createSseMessageTransform(() => undefined)
  const out: string[] = []
  transform.on('data', (c: Buffer) => out.push(c.toString()))
  transform.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n')
  transform.write('data: {"jsonrpc":"2.0","id":1,')
  await new Promise(resolve => setImmediate(resolve))
  t.strictSame(out, ['event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'], 'first event out, second still pending')
  transform.end('"result":{}}\n\n')
  await once(transform, 'end')
  t.equal(out.join(''), 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
})

t.test('untouched events pass byte for byte; replaced ones are re-encoded', async t => {
  const seen: unknown[] = []
  const filtered = await run([sample], msg => {
    seen.push(msg)
    const m = msg as { result?: { tools?: Array<{ name: string }> } }
    if (m.result?.tools === undefined) return undefined
    return { ...m, result: { ...m.result, tools: m.result.tools.filter(tool => tool.name !== 'denied') } }
  })
  t.strictSame(seen, [JSON.parse(TOOLS)], 'only JSON data reaches the handler (not the priming event, not "line1…")')
  const kept = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"météo 😀"}]}}'
  t.equal(filtered, body.replace('event: message\nid: 2\ndata: ' + TOOLS + '\n\n', 'id: 2\nevent: message\ndata: ' + kept + '\n\n'))
  t.equal(await run([sample], () => undefined), body, 'nothing replaced: the stream is unchanged (BOM and unfinished tail aside)')
  const crlf = 'event: message\r\nid: 9\r\ndata: {"jsonrpc":"2.0",\r\ndata: "id":2,"result":{}}\r\n\r\n: ping\r\n\r\n'
  t.equal(await run([crlf], () => undefined), crlf, 'CRLF and multi-line data kept')
  t.equal(await run([crlf], () => ({ jsonrpc: '2.0', id: 2, result: { x: 1 } })), 'id: 9\nevent: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"x":1}}\n\n: ping\r\n\r\n')
  t.equal(await run(['data: not json\n\n', 'event: endpoint\ndata: /messages?sessionId=1\n\n'], () => ({})), 'data: not json\n\nevent: endpoint\ndata: /messages?sessionId=1\n\n', 'non-JSON data untouched')
  t.equal(await run(['event:message\ndata:{"a" : 1}\n\n:x\n\n'], () => undefined, true), 'event: message\ndata: {"a" : 1}\n\n: x\n\n', 'canonical option')
})

t.test('handler and size errors end the stream with an error', async t => {
  const failing = createSseMessageTransform(() => { throw new Error('boom') })
  failing.resume()
  failing.write('data: {}\n\n')
  const [err] = await once(failing, 'error') as [Error]
  t.equal(err.message, 'boom')
  const big = createSseMessageTransform(() => undefined, { maxEventLength: 10 })
  big.resume()
  big.write('data: 0123456789\n')
  const [tooBig] = await once(big, 'error') as [Error]
  t.type(tooBig, SseEventTooLargeError)
  const unserialisable = createSseMessageTransform(() => () => 1)
  unserialisable.resume()
  unserialisable.write('data: {}\n\n')
  const [typeErr] = await once(unserialisable, 'error') as [Error]
  t.type(typeErr, TypeError)
})
