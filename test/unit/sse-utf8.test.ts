// The SSE decoder decodes UTF-8 chunk by chunk without a decoder object (one per open stream
// cost ~2 KiB): whatever the chunk boundaries, the text is exactly what one decode of the whole
// stream gives — multi-byte characters cut anywhere, malformed bytes as U+FFFD, a BOM kept in data.
import t from 'tap'
import { SseDecoder, completeUtf8Length, type SseFieldEvent } from '../../src/jsonrpc/sse.ts'

const whole = (bytes: Buffer): string => new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)

/** every data field of the stream, decoded from `chunks` */
function decodeChunks (chunks: Buffer[]): string[] {
  const decoder = new SseDecoder()
  const events = [...chunks.flatMap((c) => decoder.push(c)), ...decoder.end()]
  return events.filter((e): e is SseFieldEvent => e.type === 'event').map((e) => e.data)
}

const SAMPLES: Array<[string, Buffer]> = [
  ['ascii', Buffer.from('data: hello\n\n')],
  ['2-byte', Buffer.from('data: café é\n\n')],
  ['3-byte', Buffer.from('data: €uro 日本語\n\n')],
  ['4-byte', Buffer.from('data: 😀 𝄞 🚀\n\n')],
  ['mixed, two events', Buffer.from('data: a€b😀c\n\ndata: ﬀ\u2028z\n\n')],
  ['malformed: lone continuation', Buffer.concat([Buffer.from('data: x'), Buffer.from([0x80, 0xbf]), Buffer.from('y\n\n')])],
  ['malformed: truncated sequence before ASCII', Buffer.concat([Buffer.from('data: x'), Buffer.from([0xe2, 0x82]), Buffer.from('y\n\n')])],
  ['malformed: invalid leads', Buffer.concat([Buffer.from('data: '), Buffer.from([0xc0, 0xc1, 0xf5, 0xff]), Buffer.from('\n\n')])],
  ['malformed: overlong and surrogate encodings', Buffer.concat([Buffer.from('data: '), Buffer.from([0xe0, 0x80, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from('\n\n')])],
  ['BOM inside data', Buffer.concat([Buffer.from('data: '), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('x\n\n')])],
]

for (const [name, bytes] of SAMPLES) {
  t.test(`${name}: every split decodes as the whole does`, async (t) => {
    const expected = decodeChunks([bytes])
    t.same(expected.join('\n'), whole(bytes).replace(/^data: /gm, '').replace(/\n\n$/, '').split('\n\n').join('\n').replace(/\n$/, ''), 'one chunk: as TextDecoder')
    for (let i = 1; i < bytes.length; i++) {
      t.same(decodeChunks([bytes.subarray(0, i), bytes.subarray(i)]), expected, `split at ${i}`)
    }
    t.same(decodeChunks([...bytes].map((b) => Buffer.from([b]))), expected, 'byte by byte')
  })
}

t.test('completeUtf8Length', async (t) => {
  const cases: Array<[number[], number]> = [
    [[], 0], [[0x61], 1], [[0xc3], 0], [[0xc3, 0xa9], 2], [[0x61, 0xe2, 0x82], 1], [[0xe2, 0x82, 0xac], 3],
    [[0xf0, 0x9f, 0x98], 0], [[0xf0, 0x9f, 0x98, 0x80], 4], [[0x80], 1], [[0xff], 1], [[0xc0], 1], [[0xf5], 1],
    [[0x80, 0x80, 0x80, 0x80], 4],
  ]
  for (const [bytes, n] of cases) t.equal(completeUtf8Length(Buffer.from(bytes)), n, JSON.stringify(bytes))
})
