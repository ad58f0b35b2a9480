// The tests' own event-stream reader (test/helpers/sse-reader.ts) against the examples of the
// WHATWG HTML standard's server-sent events section: the oracle every e2e test reads SSE with
// must itself be right, and must not be the gateway's decoder.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { readEventStream, SseReader, type SseTestEvent } from '../helpers/sse-reader.ts'

const ev = (data: string, lastEventId = '', type = 'message'): SseTestEvent => ({ type, data, lastEventId })

const cases: Array<[string, string, SseTestEvent[]]> = [
  // the standard's examples
  ['multi-line data is joined with LF', 'data: YHOO\ndata: +2\ndata: 10\n\n', [ev('YHOO\n+2\n10')]],
  ['comments, ids, a field without a colon, the unterminated last event',
    ': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n',
    [ev('first event', '1'), ev('second event', '')]],
  ['empty data lines: "" and a single LF; the unterminated block is dropped', 'data\n\ndata\ndata\n\ndata:', [ev(''), ev('\n')]],
  ['one space after the colon is dropped, not more', 'data:test\n\ndata: test\n\ndata:  test\n\n', [ev('test'), ev('test'), ev(' test')]],
  // line endings
  ['CRLF', 'event: message\r\nid: 7\r\ndata: a\r\n\r\n', [ev('a', '7')]],
  ['lone CR', 'id: 8\rdata: b\r\r', [ev('b', '8')]],
  ['mixed CR, LF, CRLF', 'data: a\rdata: b\ndata: c\r\n\n', [ev('a\nb\nc')]],
  // fields
  ['event sets the type, for one event only', 'event: ping\ndata: 1\n\ndata: 2\n\n', [ev('1', '', 'ping'), ev('2')]],
  ['an id persists across events until changed', 'id: 3\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n', [ev('a', '3'), ev('b', '3'), ev('c', '')]],
  ['an id with NUL is ignored', 'id: 1\n\nid: a\u0000b\ndata: x\n\n', [ev('x', '1')]],
  ['an id-only block dispatches nothing but sets the id', 'id: 9\n\ndata: x\n\n', [ev('x', '9')]],
  ['unknown fields are ignored; an empty-data block dispatches nothing', 'foo: bar\n\nevent: e\n\ndata: y\n\n', [ev('y')]],
  ['the field name is case-sensitive', 'Data: x\nDATA: y\n\n', []],
  ['only the first colon splits', 'data: a: b:c\n\n', [ev('a: b:c')]],
  ['a leading BOM is dropped once', '\uFEFFdata: x\n\n\uFEFFdata: y\n\n', [ev('x')]],
]

for (const [name, stream, expected] of cases) {
  t.test(name, async (t) => {
    t.strictSame(readEventStream(stream), expected, 'whole')
    t.strictSame(readEventStream(Buffer.from(stream)), expected, 'as bytes')
    // every cut into two chunks, of the text and of the bytes, gives the same events
    const bytes = Buffer.from(stream)
    for (let cut = 0; cut <= bytes.length; cut++) {
      const reader = new SseReader()
      const got = [...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))]
      t.strictSame(got, expected, `bytes cut at ${cut}`)
      const text = new SseReader()
      t.strictSame([...text.push(stream.slice(0, cut)), ...text.push(stream.slice(cut))], expected, `text cut at ${cut}`)
    }
  })
}

t.test('retry: ASCII digits only set the reconnection time', async (t) => {
  const reader = new SseReader()
  reader.push('retry: 1500\n\n')
  t.equal(reader.reconnectionTime, 1500)
  reader.push('retry: 15x\n\nretry: -1\n\n')
  t.equal(reader.reconnectionTime, 1500, 'not digits: ignored')
})

t.test('UTF-8: a character split across chunks stays whole; invalid bytes become U+FFFD', async (t) => {
  const bytes = Buffer.from('data: é€😀\n\n')
  for (let cut = 0; cut <= bytes.length; cut++) {
    const reader = new SseReader()
    t.strictSame([...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))], [ev('é€😀')], `cut at ${cut}`)
  }
  t.strictSame(readEventStream(Buffer.concat([Buffer.from('data: a'), Buffer.from([0xff]), Buffer.from('b\n\n')])), [ev('a\uFFFDb')])
})

t.test('the test reader is independent of the gateway\'s decoder, and no helper decodes with that', async (t) => {
  const helpers = new URL('../helpers/', import.meta.url)
  t.notMatch(readFileSync(new URL('sse-reader.ts', helpers), 'utf8'), /from ['"][^'"]*src\//, 'sse-reader.ts imports nothing from src/')
  for (const file of readdirSync(helpers).filter((f) => f.endsWith('.ts'))) {
    t.notMatch(readFileSync(new URL(file, helpers), 'utf8'), /from ['"][^'"]*src\/jsonrpc\/sse/, `${file} does not import the production SSE codec`)
  }
})
