import t from 'tap'
import { isBodyError, parseJsonRpcBody, serializeBody, serializeMessage, validateMessage, type BodyError, type ParsedBody } from '../../src/jsonrpc/parse.ts'
import { errorResponse, JsonRpcErrorCode } from '../../src/jsonrpc/types.ts'

const PARSE = -32700
const INVALID = -32600

/** A tools/call whose params are `params` (raw JSON text). */
const call = (params: string): string => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${params}}`
const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)

type Expect = number | 'request' | 'notification' | 'result' | 'error' | 'batch'
interface Case { readonly name: string; readonly body: string | Buffer; readonly expect: Expect; readonly batch?: boolean }

const cases: Case[] = [
  // not JSON at all
  { name: 'plain text', body: 'hello', expect: PARSE },
  { name: 'empty body', body: '', expect: PARSE },
  { name: 'only whitespace', body: ' \r\n\t', expect: PARSE },
  { name: 'truncated object', body: '{"jsonrpc":"2.0","id":1,"method":"ping"', expect: PARSE },
  { name: 'truncated string', body: '{"jsonrpc":"2.0","id":1,"method":"pi', expect: PARSE },
  { name: 'truncated escape', body: '{"jsonrpc":"2.0","id":1,"method":"pi\\', expect: PARSE },
  { name: 'byte order mark', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"jsonrpc":"2.0","method":"ping"}')]), expect: PARSE },
  { name: 'invalid UTF-8 byte 0xff', body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), expect: PARSE },
  { name: 'overlong UTF-8 encoding of /', body: Buffer.concat([Buffer.from('{"jsonrpc":"2.0","method":"a'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), expect: PARSE },
  { name: 'UTF-8 encoded surrogate (CESU)', body: Buffer.concat([Buffer.from('{"jsonrpc":"2.0","method":"a'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), expect: PARSE },
  { name: 'multi-byte character cut short', body: Buffer.concat([Buffer.from('{"jsonrpc":"2.0","method":"a'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')]), expect: PARSE },
  { name: 'single quotes', body: "{'jsonrpc':'2.0','method':'ping'}", expect: PARSE },
  { name: 'missing colon', body: '{"jsonrpc" "2.0","method":"ping"}', expect: PARSE },
  { name: 'comment', body: '{"jsonrpc":"2.0",/* hi */"method":"ping"}', expect: PARSE },
  { name: 'trailing comma in object', body: '{"jsonrpc":"2.0","method":"ping",}', expect: PARSE },
  { name: 'trailing comma in array', body: call('{"name":"t","arguments":{"a":[1,]}}'), expect: PARSE },
  { name: 'trailing garbage', body: '{"jsonrpc":"2.0","method":"ping"} x', expect: PARSE },
  { name: 'two objects', body: '{"jsonrpc":"2.0","method":"ping"}{"jsonrpc":"2.0","method":"ping"}', expect: PARSE },
  { name: 'raw control character in a string', body: '{"jsonrpc":"2.0","method":"pi\tng"}', expect: PARSE },
  { name: 'unknown escape', body: '{"jsonrpc":"2.0","method":"\\x41"}', expect: PARSE },
  { name: 'short \\u escape', body: '{"jsonrpc":"2.0","method":"\\u12"}', expect: PARSE },
  { name: 'non-hex \\u escape', body: '{"jsonrpc":"2.0","method":"\\u12G4"}', expect: PARSE },
  { name: 'control character as \\u hex digit', body: '{"jsonrpc":"2.0","method":"\\u001\u0010"}', expect: PARSE },
  { name: 'number with leading zero', body: call('{"name":"t","arguments":{"n":01}}'), expect: PARSE },
  { name: 'number ending in a dot', body: call('{"name":"t","arguments":{"n":1.}}'), expect: PARSE },
  { name: 'number starting with a dot', body: call('{"name":"t","arguments":{"n":.5}}'), expect: PARSE },
  { name: 'number with plus sign', body: call('{"name":"t","arguments":{"n":+1}}'), expect: PARSE },
  { name: 'empty exponent', body: call('{"name":"t","arguments":{"n":1e}}'), expect: PARSE },
  { name: 'hex number', body: call('{"name":"t","arguments":{"n":0x10}}'), expect: PARSE },
  { name: 'NaN', body: call('{"name":"t","arguments":{"n":NaN}}'), expect: PARSE },
  { name: 'Infinity', body: call('{"name":"t","arguments":{"n":Infinity}}'), expect: PARSE },
  { name: 'lone minus', body: call('{"name":"t","arguments":{"n":-}}'), expect: PARSE },
  { name: 'capitalised literal', body: call('{"name":"t","arguments":{"n":True}}'), expect: PARSE },
  // JSON, but refused
  { name: 'lone high surrogate escape', body: call('{"name":"\\ud800"}'), expect: INVALID },
  { name: 'lone low surrogate escape', body: call('{"name":"\\udc00x"}'), expect: INVALID },
  { name: 'high surrogate then a letter escape', body: call('{"name":"\\ud800\\u0041"}'), expect: INVALID },
  { name: 'high surrogate then another escape', body: call('{"name":"\\ud800\\n"}'), expect: INVALID },
  { name: 'surrogates in the wrong order', body: call('{"name":"\\udc00\\ud800"}'), expect: INVALID },
  { name: 'lone surrogate in a member name', body: call('{"name":"t","arguments":{"\\udbff":1}}'), expect: INVALID },
  { name: 'number overflowing to Infinity', body: call('{"name":"t","arguments":{"n":1e400}}'), expect: INVALID },
  { name: 'number overflowing to -Infinity', body: call('{"name":"t","arguments":{"n":-1.5E+309}}'), expect: INVALID },
  { name: 'overflowing integer with 400 digits', body: call(`{"name":"t","arguments":{"n":${'9'.repeat(400)}}}`), expect: INVALID },
  { name: 'jsonrpc "1.0"', body: '{"jsonrpc":"1.0","id":1,"method":"ping"}', expect: INVALID },
  { name: 'jsonrpc missing', body: '{"id":1,"method":"ping"}', expect: INVALID },
  { name: 'jsonrpc 2.0 as a number', body: '{"jsonrpc":2.0,"id":1,"method":"ping"}', expect: INVALID },
  { name: 'id object', body: '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', expect: INVALID },
  { name: 'id array', body: '{"jsonrpc":"2.0","id":[1],"method":"ping"}', expect: INVALID },
  { name: 'id boolean', body: '{"jsonrpc":"2.0","id":true,"method":"ping"}', expect: INVALID },
  { name: 'id null on a request', body: '{"jsonrpc":"2.0","id":null,"method":"ping"}', expect: INVALID },
  { name: 'id fraction', body: '{"jsonrpc":"2.0","id":1.5,"method":"ping"}', expect: INVALID },
  { name: 'id beyond 2^53', body: '{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}', expect: INVALID },
  { name: 'method number', body: '{"jsonrpc":"2.0","id":1,"method":1}', expect: INVALID },
  { name: 'method empty', body: '{"jsonrpc":"2.0","id":1,"method":""}', expect: INVALID },
  { name: 'method null', body: '{"jsonrpc":"2.0","id":1,"method":null}', expect: INVALID },
  { name: 'params array', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["t",{}]}', expect: INVALID },
  { name: 'params string', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"t"}', expect: INVALID },
  { name: 'params null', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}', expect: INVALID },
  { name: 'request with result', body: '{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}', expect: INVALID },
  { name: 'response with both result and error', body: '{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}', expect: INVALID },
  { name: 'response with neither result nor error', body: '{"jsonrpc":"2.0","id":1}', expect: INVALID },
  { name: 'response without id', body: '{"jsonrpc":"2.0","result":{}}', expect: INVALID },
  { name: 'result that is not an object', body: '{"jsonrpc":"2.0","id":1,"result":1}', expect: INVALID },
  { name: 'result with id null', body: '{"jsonrpc":"2.0","id":null,"result":{}}', expect: INVALID },
  { name: 'error with a fractional code', body: '{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}', expect: INVALID },
  { name: 'error with a boolean id', body: '{"jsonrpc":"2.0","id":false,"error":{"code":1,"message":"x"}}', expect: INVALID },
  { name: 'error without message', body: '{"jsonrpc":"2.0","id":1,"error":{"code":1}}', expect: INVALID },
  { name: 'error that is a string', body: '{"jsonrpc":"2.0","id":1,"error":"boom"}', expect: INVALID },
  { name: 'top-level string', body: '"tools/call"', expect: INVALID },
  { name: 'top-level null', body: 'null', expect: INVALID },
  { name: 'top-level number', body: '1', expect: INVALID },
  { name: 'duplicate id', body: '{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}', expect: INVALID },
  { name: 'duplicate method', body: '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}', expect: INVALID },
  { name: 'duplicate name in params', body: call('{"name":"allowed","name":"denied"}'), expect: INVALID },
  { name: 'duplicate key in arguments', body: call('{"name":"t","arguments":{"path":"/tmp","path":"/etc"}}'), expect: INVALID },
  { name: 'duplicate key deep in arguments', body: call('{"name":"t","arguments":{"a":[{"b":{"c":1,"c":2}}]}}'), expect: INVALID },
  { name: 'duplicate key in _meta', body: call('{"name":"t","_meta":{"progressToken":1,"progressToken":2}}'), expect: INVALID },
  { name: 'duplicate only after unescaping', body: call('{"name":"allowed","\\u006eame":"denied"}'), expect: INVALID },
  { name: 'duplicate member names written differently', body: call('{"n\\u0061me":"allowed","na\\u006de":"denied"}'), expect: INVALID },
  { name: 'name and Name in params (Go matches case-insensitively)', body: call('{"name":"allowed","Name":"denied"}'), expect: INVALID },
  { name: 'method and METHOD', body: '{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}', expect: INVALID },
  { name: 'arguments and argumentſ (long s folds to s in Go)', body: call('{"name":"t","arguments":{},"argument\u017f":{}}'), expect: INVALID },
  { name: 'duplicate in the 20th member (Set path)', body: call(`{"name":"t","arguments":{${Array.from({ length: 20 }, (_, k) => `"k${k}":${k}`).join(',')},"k3":0}}`), expect: INVALID },
  { name: '__proto__ at the top', body: '{"jsonrpc":"2.0","id":1,"method":"ping","__proto__":{"admin":true}}', expect: INVALID },
  { name: '__proto__ in arguments', body: call('{"name":"t","arguments":{"x":{"__proto__":{"polluted":1}}}}'), expect: INVALID },
  { name: 'escaped __proto__', body: call('{"name":"t","arguments":{"\\u005f_proto__":{}}}'), expect: INVALID },
  { name: 'nesting deeper than 64', body: call(`{"name":"t","arguments":{"a":${nested(62)}}}`), expect: INVALID },
  { name: '100000 open brackets', body: '['.repeat(100000), expect: INVALID, batch: true },
  { name: 'batch when not allowed', body: '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', expect: INVALID },
  { name: 'empty batch', body: '[]', expect: INVALID, batch: true },
  { name: 'batch of 101', body: `[${Array.from({ length: 101 }, (_, k) => `{"jsonrpc":"2.0","id":${k},"method":"ping"}`).join(',')}]`, expect: INVALID, batch: true },
  { name: 'batch with one bad element', body: '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":""}]', expect: INVALID, batch: true },
  { name: 'batch of numbers', body: '[1,2]', expect: INVALID, batch: true },
  { name: 'nested batch', body: '[[{"jsonrpc":"2.0","id":1,"method":"ping"}]]', expect: INVALID, batch: true },
  { name: 'case-insensitive duplicate in a batch element', body: '[{"jsonrpc":"2.0","id":1,"method":"ping","Method":"x"}]', expect: INVALID, batch: true },
  // accepted
  { name: 'request', body: '{"jsonrpc":"2.0","id":1,"method":"ping"}', expect: 'request' },
  { name: 'request with string id', body: '{"jsonrpc":"2.0","id":"a-1","method":"ping"}', expect: 'request' },
  { name: 'request with empty string id', body: '{"jsonrpc":"2.0","id":"","method":"ping"}', expect: 'request' },
  { name: 'request with negative id', body: '{"jsonrpc":"2.0","id":-7,"method":"ping"}', expect: 'request' },
  { name: 'request with id 1.0 (an integer)', body: '{"jsonrpc":"2.0","id":1.0,"method":"ping"}', expect: 'request' },
  { name: 'notification', body: '{"jsonrpc":"2.0","method":"notifications/initialized"}', expect: 'notification' },
  { name: 'result response', body: '{"jsonrpc":"2.0","id":1,"result":{}}', expect: 'result' },
  { name: 'error response', body: '{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"no","data":[1]}}', expect: 'error' },
  { name: 'error response with id null', body: '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}', expect: 'error' },
  { name: 'whitespace everywhere', body: ' \n{ "jsonrpc" : "2.0" ,\r\n"id" :\t1 , "method" : "ping" } \n', expect: 'request' },
  { name: 'valid surrogate pair escape', body: call('{"name":"\\ud83d\\ude00"}'), expect: 'request' },
  { name: 'raw non-ASCII text', body: call('{"name":"météo","arguments":{"ville":"Zürich 東京 😀"}}'), expect: 'request' },
  { name: 'escaped NUL', body: call('{"name":"t","arguments":{"s":"a\\u0000b"}}'), expect: 'request' },
  { name: 'all escapes', body: call('{"name":"t","arguments":{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u00C9"}}'), expect: 'request' },
  { name: 'case variants deep in arguments', body: call('{"name":"t","arguments":{"headers":{"Accept":"a","accept":"b"}}}'), expect: 'request' },
  { name: 'Name without name (classify refuses it later)', body: call('{"Name":"t"}'), expect: 'request' },
  { name: 'constructor and prototype members', body: call('{"name":"t","arguments":{"constructor":1,"prototype":{"toString":2}}}'), expect: 'request' },
  { name: 'unknown top-level member', body: '{"jsonrpc":"2.0","id":1,"method":"ping","extension":{"x":1}}', expect: 'request' },
  { name: 'nesting of exactly 64', body: call(`{"name":"t","arguments":{"a":${nested(61)}}}`), expect: 'request' },
  { name: 'number edge cases', body: call('{"name":"t","arguments":{"a":-0,"b":1e-400,"c":12345678901234567890,"d":1E+2,"e":-0.0e0,"f":1.7976931348623157e308}}'), expect: 'request' },
  { name: 'literals', body: call('{"name":"t","arguments":{"a":true,"b":false,"c":null,"d":[],"e":{}}}'), expect: 'request' },
  { name: '15 distinct members then 5 more (Set path)', body: call(`{"name":"t","arguments":{${Array.from({ length: 20 }, (_, k) => `"k${k}":${k}`).join(',')}}}`), expect: 'request' },
  { name: 'a 1 MiB string', body: call(`{"name":"t","arguments":{"blob":"${'x'.repeat(1 << 20)}"}}`), expect: 'request' },
  { name: 'batch of 100', body: `[${Array.from({ length: 100 }, (_, k) => `{"jsonrpc":"2.0","id":${k},"method":"ping"}`).join(',')}]`, expect: 'batch', batch: true },
  { name: 'batch of a request, a notification and a response', body: '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":9,"result":{}}]', expect: 'batch', batch: true },
  { name: 'same member names in sibling objects', body: call('{"name":"t","arguments":{"a":{"x":1},"b":{"x":1}},"_meta":{"x":1}}'), expect: 'request' }
]

t.test('hostile and valid bodies', t => {
  t.ok(cases.length >= 40)
  for (const c of cases) {
    const body = typeof c.body === 'string' ? Buffer.from(c.body) : c.body
    const result = parseJsonRpcBody(body, { allowBatch: c.batch === true })
    if (typeof c.expect === 'number') {
      if (!isBodyError(result)) {
        t.fail(`${c.name}: accepted, expected ${c.expect}`)
        continue
      }
      t.equal(result.code, c.expect, c.name)
      t.equal(result.error, c.expect === PARSE ? 'parse' : 'invalid', `${c.name}: kind`)
      t.match(result.message, c.expect === PARSE ? /^Parse error: / : /^Invalid Request: /, `${c.name}: message`)
    } else if (isBodyError(result)) {
      t.fail(`${c.name}: refused with ${result.code} ${result.message}`)
    } else if (c.expect === 'batch') {
      t.equal(result.batch, true, c.name)
    } else {
      t.equal(result.batch, false, c.name)
      t.equal(result.messages[0]?.kind, c.expect, c.name)
    }
  }
  t.end()
})

function parseOk (body: string, allowBatch = false): ParsedBody {
  const result = parseJsonRpcBody(Buffer.from(body), { allowBatch })
  if (isBodyError(result)) throw new Error(result.message)
  return result
}

t.test('messages expose their parts and keep the raw object', t => {
  const { messages: [req] } = parseOk(call('{"name":"echo","arguments":{"x":1},"_meta":{"progressToken":"p"}}'))
  if (req?.kind !== 'request') throw new Error('not a request')
  t.equal(req.id, 1)
  t.equal(req.method, 'tools/call')
  t.same(req.params, { name: 'echo', arguments: { x: 1 }, _meta: { progressToken: 'p' } })
  t.equal(req.params, req.raw.params, 'params is the object inside raw')
  const { messages: [err] } = parseOk('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"m","data":{"d":1}}}')
  if (err?.kind !== 'error') throw new Error('not an error')
  t.equal(err.id, null)
  t.same(err.error, { code: -32000, message: 'm', data: { d: 1 } })
  const { messages: [res] } = parseOk('{"jsonrpc":"2.0","id":"r","result":{"tools":[]}}')
  if (res?.kind !== 'result') throw new Error('not a result')
  t.same(res.result, { tools: [] })
  t.end()
})

t.test('serialisation is the parsed object, never the input bytes', t => {
  const body = ' { "jsonrpc" : "2.0", "id" : 7, "method" : "tools/call", "params" : { "name" : "\\u0065cho", "arguments" : { "n" : 1.50, "s" : "\\u00e9\\/" }, "_meta" : { "progressToken" : 3, "x-vendor" : [ 1 , { } ] } } } '
  const parsed = parseOk(body)
  const expected = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"n":1.5,"s":"é/"},"_meta":{"progressToken":3,"x-vendor":[1,{}]}}}'
  t.equal(serializeBody(parsed), expected)
  t.equal(serializeMessage(parsed.messages[0]!), expected)
  t.same(JSON.parse(serializeBody(parsed)), JSON.parse(body), 'same value')
  t.equal(serializeBody(parseOk(expected)), expected, 'canonical text is a fixed point')
  const batch = '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x","params":{"constructor":{"prototype":1}}}]'
  t.equal(serializeBody(parseOk(batch, true)), batch, 'batch stays a batch, constructor members survive')
  t.equal(serializeBody(parseOk('[{"jsonrpc":"2.0","id":1,"method":"ping"}]', true)), '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', 'batch of one stays an array')
  const rewritten = parseOk(call('{"name":"t","arguments":{}}'))
  const first = rewritten.messages[0]
  if (first?.kind !== 'request' || first.params === undefined) throw new Error('not a request')
  first.params.name = 'other'
  t.equal(serializeBody(rewritten), call('{"name":"other","arguments":{}}'), 'rewriting params rewrites what is forwarded')
  t.equal(serializeMessage(errorResponse(3, JsonRpcErrorCode.InvalidParams, 'Unknown tool: x')), '{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Unknown tool: x"}}')
  t.equal(serializeMessage(errorResponse(null, -32700, 'Parse error', { detail: 1 })), '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error","data":{"detail":1}}}')
  t.end()
})

t.test('JSON.parse never sees __proto__, so nothing is polluted', t => {
  parseJsonRpcBody(Buffer.from(call('{"name":"t","arguments":{"__proto__":{"polluted":true}}}')), { allowBatch: false })
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.end()
})

t.test('options', t => {
  const deep = Buffer.from(call(`{"name":"t","arguments":{"a":${nested(10)}}}`))
  t.equal((parseJsonRpcBody(deep, { allowBatch: false, maxDepth: 12 }) as BodyError).code, INVALID)
  t.notOk(isBodyError(parseJsonRpcBody(deep, { allowBatch: false, maxDepth: 13 })))
  const three = Buffer.from('[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"b"},{"jsonrpc":"2.0","method":"c"}]')
  t.equal((parseJsonRpcBody(three, { allowBatch: true, maxBatchLength: 2 }) as BodyError).message, 'Invalid Request: batch too long')
  t.end()
})

t.test('validateMessage checks values parsed elsewhere', t => {
  const ok = validateMessage({ jsonrpc: '2.0', id: 1, result: { tools: [] } })
  t.equal(isBodyError(ok) ? ok.code : ok.kind, 'result')
  t.same(validateMessage({ jsonrpc: '2.0', id: 1, method: 'x', params: [] }), { error: 'invalid', code: INVALID, message: 'Invalid Request: params must be an object' })
  t.equal((validateMessage('x') as BodyError).code, INVALID)
  t.equal((validateMessage(null) as BodyError).code, INVALID)
  t.end()
})

t.test('method names and string ids are bounded, and never quoted back', t => {
  const huge = 'm'.repeat(900_000)
  const refused: Array<[string, object, string]> = [
    ['a 900 KB method', { jsonrpc: '2.0', id: 1, method: huge }, 'Invalid Request: method name longer than 128 characters'],
    ['a 129-character method', { jsonrpc: '2.0', id: 1, method: 'm'.repeat(129) }, 'Invalid Request: method name longer than 128 characters'],
    ['a 900 KB notification method', { jsonrpc: '2.0', method: huge }, 'Invalid Request: method name longer than 128 characters'],
    ['a 900 KB string id', { jsonrpc: '2.0', id: huge, method: 'ping' }, 'Invalid Request: id longer than 256 characters'],
    ['a 257-character string id', { jsonrpc: '2.0', id: 'i'.repeat(257), method: 'ping' }, 'Invalid Request: id longer than 256 characters'],
    ['a 900 KB id on a result', { jsonrpc: '2.0', id: huge, result: {} }, 'Invalid Request: id longer than 256 characters'],
    ['a 900 KB id on an error', { jsonrpc: '2.0', id: huge, error: { code: 1, message: 'm' } }, 'Invalid Request: id longer than 256 characters'],
  ]
  for (const [name, message, expected] of refused) {
    const result = parseJsonRpcBody(Buffer.from(JSON.stringify(message)), { allowBatch: false })
    t.ok(isBodyError(result), name)
    if (isBodyError(result)) t.same([result.code, result.message], [-32600, expected], name)
  }
  t.ok(!isBodyError(parseJsonRpcBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 'i'.repeat(256), method: 'm'.repeat(128) })), { allowBatch: false })), 'at the bounds: accepted')
  t.end()
})
