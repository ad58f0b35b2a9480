import t from 'tap'
import { classify, decodeMcpHeaderValue, expectedMcpNameHeader, type McpOperation } from '../../src/jsonrpc/classify.ts'
import { isBodyError, parseJsonRpcBody } from '../../src/jsonrpc/parse.ts'

function op (body: unknown): McpOperation {
  const parsed = parseJsonRpcBody(Buffer.from(JSON.stringify(body)), { allowBatch: false })
  if (isBodyError(parsed)) throw new Error(parsed.message)
  return classify(parsed.messages[0]!)
}

const request = (method: string, params?: unknown, id: string | number = 1): unknown =>
  params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params }

t.test('targets of the methods the policy judges', t => {
  const cases: Array<[string, unknown, string | undefined, string | undefined]> = [
    // method, params, target, Mcp-Name
    ['tools/call', { name: 'get_weather', arguments: {} }, 'get_weather', 'get_weather'],
    ['tools/call', { name: 'Get_Weather' }, 'Get_Weather', 'Get_Weather'],
    ['tools/call', { name: 'ｇｅｔ' }, 'ｇｅｔ', 'ｇｅｔ'],
    ['tools/call', { name: ' spaced ' }, ' spaced ', ' spaced '],
    ['prompts/get', { name: 'summary', arguments: { a: 'b' } }, 'summary', 'summary'],
    ['resources/read', { uri: 'file:///etc/hosts' }, 'file:///etc/hosts', 'file:///etc/hosts'],
    ['resources/subscribe', { uri: 'db://x' }, 'db://x', undefined],
    ['resources/unsubscribe', { uri: 'db://x' }, 'db://x', undefined],
    ['tools/list', { cursor: 'abc' }, undefined, undefined],
    ['tools/list', undefined, undefined, undefined],
    ['initialize', { protocolVersion: '2025-06-18' }, undefined, undefined],
    ['Tools/Call', { name: 'x' }, undefined, undefined],
    ['toString', { name: 'x' }, undefined, undefined],
    ['constructor', { name: 'x' }, undefined, undefined]
  ]
  for (const [method, params, target, header] of cases) {
    const o = op(request(method, params))
    t.equal(o.kind, 'request', method)
    t.equal(o.method, method, method)
    t.equal(o.id, 1, method)
    t.equal(o.target, target, `${method} target`)
    t.equal(o.invalid, undefined, `${method} valid`)
    t.equal(expectedMcpNameHeader(o), header, `${method} Mcp-Name`)
  }
  t.end()
})

t.test('a judged method without its target is invalid (-32602)', t => {
  const cases: Array<[string, unknown]> = [
    ['tools/call', undefined],
    ['tools/call', {}],
    ['tools/call', { name: 1 }],
    ['tools/call', { name: null }],
    ['tools/call', { name: ['a'] }],
    ['tools/call', { name: { toString: 'a' } }],
    ['tools/call', { Name: 'a' }],
    ['tools/call', { tool: 'a' }],
    ['tools/call', { uri: 'a' }],
    ['prompts/get', { uri: 'a' }],
    ['prompts/get', { name: false }],
    ['resources/read', { name: 'a' }],
    ['resources/read', { uri: 7 }],
    ['resources/subscribe', {}],
    ['resources/unsubscribe', undefined]
  ]
  for (const [method, params] of cases) {
    const o = op(request(method, params))
    t.type(o.invalid, 'string', `${method} ${JSON.stringify(params)}`)
    t.equal(o.target, undefined)
  }
  t.match(op(request('tools/call', {})).invalid, 'tools/call requires params.name to be a string')
  t.match(op(request('resources/read', {})).invalid, 'resources/read requires params.uri to be a string')
  const notification = op({ jsonrpc: '2.0', method: 'tools/call', params: { arguments: {} } })
  t.equal(notification.kind, 'notification')
  t.type(notification.invalid, 'string', 'a tools/call without id is judged too')
  t.equal(op({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'x' } }).target, 'x')
  t.end()
})

t.test('_meta: progress token and 2026-07-28 protocol version', t => {
  const meta = (m: unknown): McpOperation => op(request('tools/call', { name: 't', _meta: m }))
  t.equal(meta({ progressToken: 'p1' }).progressToken, 'p1')
  t.equal(meta({ progressToken: 0 }).progressToken, 0)
  t.equal(meta({ progressToken: true }).progressToken, undefined)
  t.equal(meta({ progressToken: null }).progressToken, undefined)
  t.equal(meta({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28' }).protocolVersion, '2026-07-28')
  t.equal(meta({ 'io.modelcontextprotocol/protocolVersion': 20260728 }).protocolVersion, undefined)
  t.equal(meta({ protocolVersion: '2026-07-28' }).protocolVersion, undefined)
  t.equal(meta('x').progressToken, undefined)
  t.equal(meta([{ progressToken: 1 }]).progressToken, undefined)
  t.equal(op(request('ping')).progressToken, undefined)
  t.equal(op(request('tools/call', { name: 't' })).protocolVersion, undefined)
  t.end()
})

t.test('names, URIs and progress tokens are bounded before policy, and never quoted', t => {
  const huge = 'a'.repeat(900_000)
  const cases: Array<[string, unknown, string | undefined]> = [
    // method, params, invalid
    ['tools/call', { name: 'x'.repeat(128) }, undefined],
    ['tools/call', { name: '\u{1F600}'.repeat(128) }, undefined], // 128 characters, 256 UTF-16 units
    ['tools/call', { name: 'x'.repeat(129) }, 'tool name longer than 128 characters'],
    ['tools/call', { name: '\u{1F600}'.repeat(129) }, 'tool name longer than 128 characters'],
    ['tools/call', { name: huge }, 'tool name longer than 128 characters'],
    ['tools/call', { name: '' }, 'tool name is empty'],
    ['prompts/get', { name: huge }, 'prompt name longer than 128 characters'],
    ['prompts/get', { name: '' }, 'prompt name is empty'],
    ['resources/read', { uri: `file:///${'a'.repeat(2040)}` }, undefined],
    ['resources/read', { uri: `file:///${'a'.repeat(2041)}` }, 'resource URI longer than 2048 characters'],
    ['resources/subscribe', { uri: huge }, 'resource URI longer than 2048 characters'],
    ['resources/unsubscribe', { uri: huge }, 'resource URI longer than 2048 characters'],
    ['completion/complete', { ref: { type: 'ref/prompt', name: huge }, argument: { name: 'a', value: '' } }, 'prompt name longer than 128 characters'],
    ['completion/complete', { ref: { type: 'ref/resource', uri: huge }, argument: { name: 'a', value: '' } }, 'resource URI longer than 2048 characters'],
    ['tools/call', { name: 't', _meta: { progressToken: 'p'.repeat(256) } }, undefined],
    ['tools/call', { name: 't', _meta: { progressToken: huge } }, 'progress token longer than 256 characters'],
    ['tools/list', { _meta: { progressToken: huge } }, 'progress token longer than 256 characters'],
  ]
  for (const [method, params, invalid] of cases) {
    const o = op(request(method, params))
    t.equal(o.invalid, invalid, `${method} ${JSON.stringify(params).slice(0, 80)}`)
    if (invalid !== undefined && !invalid.startsWith('progress')) t.equal(o.target, undefined, 'no target kept')
  }
  t.end()
})

t.test('completion/complete: its ref is the target', t => {
  const complete = (ref: unknown): McpOperation => op(request('completion/complete', { ref, argument: { name: 'a', value: 'b' } }))
  t.match(complete({ type: 'ref/prompt', name: 'greet' }), { target: 'greet', ref: 'prompt', invalid: undefined })
  t.match(complete({ type: 'ref/resource', uri: 'file:///{path}' }), { target: 'file:///{path}', ref: 'resource', invalid: undefined })
  for (const ref of [undefined, null, 'ref/prompt', { type: 'ref/prompt' }, { type: 'ref/prompt', uri: 'x' }, { type: 'ref/resource', name: 'x' },
    { type: 'ref/tool', name: 'x' }, { type: 'REF/PROMPT', name: 'x' }, { type: 'ref/prompt', name: 7 }, [{ type: 'ref/prompt', name: 'x' }]]) {
    const o = complete(ref)
    t.match(o.invalid, /^completion\/complete requires params\.ref/, JSON.stringify(ref))
    t.equal(o.target, undefined)
  }
  t.equal(expectedMcpNameHeader(complete({ type: 'ref/prompt', name: 'greet' })), undefined, 'no Mcp-Name header')
  t.end()
})

t.test('responses', t => {
  const result = op({ jsonrpc: '2.0', id: 'a', result: { name: 'x' } })
  t.same(result, { kind: 'result', method: undefined, id: 'a', target: undefined, ref: undefined, progressToken: undefined, protocolVersion: undefined, invalid: undefined })
  t.equal(op({ jsonrpc: '2.0', id: 4, error: { code: 1, message: 'm' } }).id, 4)
  t.equal(op({ jsonrpc: '2.0', id: null, error: { code: 1, message: 'm' } }).id, undefined)
  t.equal(expectedMcpNameHeader(result), undefined)
  t.end()
})

t.test('decodeMcpHeaderValue', t => {
  const b64 = (s: string): string => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`
  const cases: Array<[string | string[] | undefined, string | undefined]> = [
    ['get_weather', 'get_weather'],
    ['', ''],
    [b64('get_weather'), 'get_weather'],
    [b64('Hello, 世界'), 'Hello, 世界'],
    ['=?base64?SGVsbG8sIOS4lueVjA==?=', 'Hello, 世界'],
    ['=?base64?IHBhZGRlZCA=?=', ' padded '],
    ['=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=', '=?base64?literal?='],
    ['=?base64??=', ''],
    [b64('=?base64?x?='), '=?base64?x?='],
    // markers are lowercase and case-sensitive; both are needed
    ['=?BASE64?Z2V0?=', '=?BASE64?Z2V0?='],
    ['=?base64?Z2V0', '=?base64?Z2V0'],
    ['Z2V0?=', 'Z2V0?='],
    ['=?base64?=', '=?base64?='],
    // invalid Base64 → undefined
    ['=?base64?%%%?=', undefined],
    ['=?base64?Z2V0X3dlYXRoZXI?=', undefined], // missing padding
    ['=?base64?Z2V0X3dlYXRoZXI=?=', 'get_weather'],
    ['=?base64?Z2V0X3dlYXRoZXJ=?=', undefined], // non-zero trailing bits (not canonical)
    ['=?base64?Z2V0 X3dl?=', undefined],
    ['=?base64?Z2V0-X3d?=', undefined], // URL-safe alphabet
    ['=?base64?Z2V0_X3d?=', undefined],
    ['=?base64?Z===?=', undefined],
    ['=?base64?Zg==Zg==?=', undefined],
    ['=?base64?' + Buffer.from([0xff, 0xfe]).toString('base64') + '?=', undefined], // not UTF-8
    ['=?base64?' + Buffer.from([0xed, 0xa0, 0x80]).toString('base64') + '?=', undefined], // encoded surrogate
    [['a', 'b'], undefined],
    [undefined, undefined]
  ]
  for (const [input, expected] of cases) t.equal(decodeMcpHeaderValue(input), expected, JSON.stringify(input))
  t.end()
})

t.test('Mcp-Name comparison is exact after decoding', t => {
  const o = op(request('tools/call', { name: 'météo' }))
  t.equal(decodeMcpHeaderValue(`=?base64?${Buffer.from('météo').toString('base64')}?=`), expectedMcpNameHeader(o))
  t.not(decodeMcpHeaderValue(`=?base64?${Buffer.from('me\u0301te\u0301o').toString('base64')}?=`), expectedMcpNameHeader(o), 'no Unicode normalisation')
  t.not(decodeMcpHeaderValue('MÉTÉO'), expectedMcpNameHeader(o), 'no case folding')
  t.end()
})
