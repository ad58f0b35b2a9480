/**
 * Micro-benchmark of the per-request JSON-RPC work: strict parse + classify + re-serialise.
 * Run: node_modules/.bin/node test/bench/micro/parse.bench.ts   (prints ops/s; asserts nothing)
 */
import { parseJsonRpcBody, serializeBody, isBodyError } from '../../../src/jsonrpc/parse.ts'
import { classify } from '../../../src/jsonrpc/classify.ts'
import { SseDecoder } from '../../../src/jsonrpc/sse.ts'
import { bench } from './loop.ts'

/** 104 bytes: the typical tools/call */
const small = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Paris"}}}')

/** about 4 KB: a tools/call with a table of arguments (objects, strings, numbers, booleans) */
const rows = Array.from({ length: 48 }, (_, k) => ({ id: k, label: `row number ${k}`, tags: ['alpha', 'beta'], ok: k % 2 === 0, score: k * 1.5 }))
const large = Buffer.from(JSON.stringify({
  jsonrpc: '2.0',
  id: 'req-42',
  method: 'tools/call',
  params: { name: 'bulk_insert', arguments: { table: 'events', rows }, _meta: { progressToken: 'p-1' } }
}))

function roundTrip (body: Buffer): () => void {
  return () => {
    const parsed = parseJsonRpcBody(body, { allowBatch: false })
    if (isBodyError(parsed)) throw new Error(parsed.message)
    classify(parsed.messages[0]!)
    serializeBody(parsed)
  }
}

const sse = Buffer.from(`event: message\nid: 1\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'sunny, 21 °C' }] } })}\n\n`)

console.log(`small body ${small.length} B, large body ${large.length} B, SSE event ${sse.length} B`)
bench(`parse+classify+serialize ${small.length} B`, roundTrip(small))
bench(`parse+classify+serialize ${large.length} B`, roundTrip(large))
bench(`baseline JSON.parse+stringify ${small.length} B`, () => { JSON.stringify(JSON.parse(small.toString())) })
bench(`baseline JSON.parse+stringify ${large.length} B`, () => { JSON.stringify(JSON.parse(large.toString())) })
bench(`SSE decode one ${sse.length} B event`, () => { new SseDecoder().push(sse) })
