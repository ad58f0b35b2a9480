import t from 'tap'
import type { McpExchange, UpstreamMessageStage } from '../../src/mcp/exchange.ts'
import { relayJson } from '../../src/upstream/relay.ts'

// What a complete JSON answer becomes on its way to the client (relay.ts): the upstream's own
// text when nothing rewrote it, as a string when it is UTF-8 (Node writes it with the head in
// one write), as the very bytes received when it is not; a rewrite is serialised again.

function exchange (stages: UpstreamMessageStage[] = []): McpExchange {
  return { pending: new Map([[1, 'tools/call']]), response: { onUpstreamMessage: stages, onClose: [] } } as unknown as McpExchange
}

const cases: Array<{ name: string; body: Buffer; observers?: UpstreamMessageStage[]; want: string | Buffer | undefined }> = [
  { name: 'plain ASCII, unchanged', body: Buffer.from('{"jsonrpc":"2.0","id":1,"result":{}}'), want: '{"jsonrpc":"2.0","id":1,"result":{}}' },
  { name: 'UTF-8 text, byte for byte', body: Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"t":"21 °C, 東京 🌧"}}'), want: '{"jsonrpc":"2.0","id":1,"result":{"t":"21 °C, 東京 🌧"}}' },
  { name: 'whitespace and key order kept', body: Buffer.from('{ "result" : {"b":1,"a":2}, "id":1, "jsonrpc":"2.0" }\n'), want: '{ "result" : {"b":1,"a":2}, "id":1, "jsonrpc":"2.0" }\n' },
  {
    name: 'not UTF-8 inside a string: the bytes as received, not repaired',
    body: Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"t":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]),
    want: Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"t":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]),
  },
  { name: 'a batch, unchanged', body: Buffer.from('[{"jsonrpc":"2.0","id":1,"result":{}}]'), want: '[{"jsonrpc":"2.0","id":1,"result":{}}]' },
  { name: 'not JSON', body: Buffer.from('<html>bad gateway</html>'), want: undefined },
  { name: 'truncated JSON', body: Buffer.from('{"jsonrpc":"2.0","id":1,"res'), want: undefined },
  { name: 'a byte order mark', body: Buffer.from('\ufeff{"jsonrpc":"2.0","id":1,"result":{}}'), want: undefined },
  {
    name: 'rewritten by a stage: serialised again',
    body: Buffer.from('{"jsonrpc":"2.0", "id":1, "result":{"tools":[]}}'),
    observers: [(_e, m) => ({ ...(m as object), result: { tools: [], cacheScope: 'private' } })],
    want: '{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"private"}}',
  },
  {
    name: 'a batch with one message rewritten',
    body: Buffer.from('[{"jsonrpc":"2.0","id":1,"result":{}}, {"jsonrpc":"2.0","method":"notifications/x"}]'),
    observers: [(_e, m) => ('id' in (m as object) ? { ...(m as object), result: { x: 1 } } : undefined)],
    want: '[{"jsonrpc":"2.0","id":1,"result":{"x":1}},{"jsonrpc":"2.0","method":"notifications/x"}]',
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const out = relayJson(c.body, exchange(c.observers))
    if (Buffer.isBuffer(c.want)) {
      t.ok(Buffer.isBuffer(out), 'a Buffer')
      t.ok(Buffer.isBuffer(out) && out.equals(c.want), 'the bytes received')
    } else {
      t.equal(out, c.want)
    }
  })
}
