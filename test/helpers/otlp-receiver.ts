import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync, inflateSync } from 'node:zlib'

/**
 * A loopback OTLP/HTTP trace receiver for tests (reference/observability.md §2.5: Debian has no
 * collector and npm has no receiver). `POST /v1/traces` with `application/json` (OTLP/JSON: hex
 * ids, enum kinds as numbers) or `application/x-protobuf` (decoded here with a small wire-format
 * reader over the opentelemetry-proto trace messages), optionally gzip; both become the same
 * `ReceivedSpan`s. Answers an empty ExportTraceServiceResponse in the request's encoding.
 */

/** SpanKind as OTLP numbers it */
export const OTLP_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const
/** Status.code */
export const OTLP_STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const

export type AttributeValue = string | number | boolean | bigint | null | AttributeValue[] | { [key: string]: AttributeValue }

export interface ReceivedSpan {
  /** lower-case hex */
  readonly traceId: string
  readonly spanId: string
  /** '' for a root span */
  readonly parentSpanId: string
  readonly name: string
  readonly kind: number
  readonly attributes: Readonly<Record<string, AttributeValue>>
  readonly status: { readonly code: number; readonly message: string }
  readonly resource: Readonly<Record<string, AttributeValue>>
  readonly scope: string
}

export interface ReceivedRequest {
  readonly path: string
  readonly contentType: string
  readonly contentEncoding: string | undefined
  /** the body as received (still compressed, if it was) */
  readonly body: Buffer
  readonly spans: readonly ReceivedSpan[]
  /** why the body could not be decoded, if it could not */
  readonly error?: string
}

export interface OtlpReceiver {
  /** base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporters append /v1/traces) */
  readonly url: string
  readonly tracesUrl: string
  readonly requests: ReceivedRequest[]
  /** every span of every request so far */
  spans (): ReceivedSpan[]
  /** resolves with the spans once `done(spans)` holds, or rejects after `timeoutMs` */
  waitFor (done: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>
  close (): Promise<void>
}

export async function startOtlpReceiver (): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { receive(req, res, Buffer.concat(chunks), requests) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  const spans = (): ReceivedSpan[] => requests.flatMap((r) => [...r.spans])
  return {
    url,
    tracesUrl: `${url}/v1/traces`,
    requests,
    spans,
    async waitFor (done, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const all = spans()
        if (done(all)) return all
        if (Date.now() > deadline) throw new Error(`the OTLP receiver did not get the expected spans within ${timeoutMs} ms; got ${all.length}: ${all.map((s) => `${s.name}/${s.kind}`).join(', ')}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function receive (req: IncomingMessage, res: ServerResponse, body: Buffer, requests: ReceivedRequest[]): void {
  const path = (req.url ?? '').split('?')[0] ?? ''
  const contentType = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  const contentEncoding = typeof req.headers['content-encoding'] === 'string' ? req.headers['content-encoding'].toLowerCase() : undefined
  if (req.method !== 'POST' || path !== '/v1/traces') {
    res.writeHead(404).end()
    return
  }
  const json = contentType === 'application/json'
  const protobuf = contentType === 'application/x-protobuf'
  if (!json && !protobuf) {
    res.writeHead(415, { 'content-type': 'text/plain' }).end('unsupported content type')
    return
  }
  let spans: ReceivedSpan[] = []
  let error: string | undefined
  try {
    const plain = contentEncoding === 'gzip' ? gunzipSync(body) : contentEncoding === 'deflate' ? inflateSync(body) : body
    spans = json ? decodeJsonTraces(JSON.parse(plain.toString('utf8'))) : decodeProtobufTraces(plain)
  } catch (err) {
    error = (err as Error).message
  }
  requests.push({ path, contentType, contentEncoding, body, spans, ...(error === undefined ? {} : { error }) })
  if (error !== undefined) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(error)
    return
  }
  // ExportTraceServiceResponse with no partial_success: `{}` in JSON, zero bytes in protobuf.
  if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
}

// ---- OTLP/JSON --------------------------------------------------------------------------------

interface JsonKeyValue { key: string; value?: JsonAnyValue }
interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string
}
interface JsonSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number | string
  attributes?: JsonKeyValue[];
  status?: { code?: number | string; message?: string }
}
interface JsonTraces {
  resourceSpans?: Array<{ resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: Array<{ scope?: { name?: string }; spans?: JsonSpan[] }> }>
}

const KIND_NAMES: Record<string, number> = { SPAN_KIND_UNSPECIFIED: 0, SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3, SPAN_KIND_PRODUCER: 4, SPAN_KIND_CONSUMER: 5 }
const STATUS_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 }

export function decodeJsonTraces (value: unknown): ReceivedSpan[] {
  const traces = value as JsonTraces
  if (typeof traces !== 'object' || traces === null || !Array.isArray(traces.resourceSpans)) throw new Error('not an ExportTraceServiceRequest: no resourceSpans')
  const out: ReceivedSpan[] = []
  for (const rs of traces.resourceSpans) {
    const resource = jsonAttributes(rs.resource?.attributes)
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        out.push({
          traceId: jsonId(span.traceId),
          spanId: jsonId(span.spanId),
          parentSpanId: jsonId(span.parentSpanId),
          name: span.name ?? '',
          kind: typeof span.kind === 'string' ? KIND_NAMES[span.kind] ?? -1 : span.kind ?? 0,
          attributes: jsonAttributes(span.attributes),
          status: {
            code: typeof span.status?.code === 'string' ? STATUS_NAMES[span.status.code] ?? -1 : span.status?.code ?? 0,
            message: span.status?.message ?? '',
          },
          resource,
          scope: ss.scope?.name ?? '',
        })
      }
    }
  }
  return out
}

/** OTLP/JSON ids are hex (the spec's exception to proto3 JSON's base64); accept base64 too. */
function jsonId (id: string | undefined): string {
  if (id === undefined || id === '') return ''
  if (/^[0-9a-fA-F]+$/.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase()
  return Buffer.from(id, 'base64').toString('hex')
}

function jsonAttributes (list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {}
  for (const kv of list ?? []) out[kv.key] = jsonValue(kv.value)
  return out
}

function jsonValue (v: JsonAnyValue | undefined): AttributeValue {
  if (v === undefined) return null
  if (v.stringValue !== undefined) return v.stringValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.doubleValue !== undefined) return v.doubleValue
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(jsonValue)
  if (v.kvlistValue !== undefined) return jsonAttributes(v.kvlistValue.values)
  if (v.bytesValue !== undefined) return v.bytesValue
  return null
}

// ---- OTLP/protobuf ----------------------------------------------------------------------------
// opentelemetry-proto: collector/trace/v1 ExportTraceServiceRequest { repeated ResourceSpans 1 },
// trace/v1 ResourceSpans { Resource 1; repeated ScopeSpans 2 }, ScopeSpans { InstrumentationScope 1;
// repeated Span 2 }, Span { bytes trace_id 1; bytes span_id 2; string trace_state 3; bytes
// parent_span_id 4; string name 5; SpanKind kind 6; fixed64 start 7, end 8; repeated KeyValue
// attributes 9; …; Status status 15; fixed32 flags 16 }, Status { string message 2; code 3 },
// common/v1 KeyValue { string key 1; AnyValue value 2 }, AnyValue { oneof string 1, bool 2,
// int64 3, double 4, ArrayValue 5, KeyValueList 6, bytes 7 }, Resource { repeated KeyValue 1 },
// InstrumentationScope { string name 1 }.

interface Field {
  readonly field: number
  readonly wire: number
  /** varint / fixed64 (as bigint), fixed32 (as number) */
  readonly int?: bigint
  /** length-delimited payload */
  readonly bytes?: Buffer
}

/** Every field of one message, in order (repeated fields repeat). */
function fields (buf: Buffer): Field[] {
  const out: Field[] = []
  let pos = 0
  const varint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      if (pos >= buf.length) throw new Error('protobuf: truncated varint')
      const b = buf[pos++] as number
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result
      shift += 7n
      if (shift > 63n) throw new Error('protobuf: varint too long')
    }
  }
  while (pos < buf.length) {
    const tag = Number(varint())
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 0) throw new Error('protobuf: field number 0')
    switch (wire) {
      case 0: out.push({ field, wire, int: varint() }); break
      case 1:
        if (pos + 8 > buf.length) throw new Error('protobuf: truncated fixed64')
        out.push({ field, wire, int: buf.readBigUInt64LE(pos), bytes: buf.subarray(pos, pos + 8) }); pos += 8; break
      case 2: {
        const len = Number(varint())
        if (pos + len > buf.length) throw new Error('protobuf: truncated length-delimited field')
        out.push({ field, wire, bytes: buf.subarray(pos, pos + len) }); pos += len; break
      }
      case 5:
        if (pos + 4 > buf.length) throw new Error('protobuf: truncated fixed32')
        out.push({ field, wire, int: BigInt(buf.readUInt32LE(pos)), bytes: buf.subarray(pos, pos + 4) }); pos += 4; break
      default: throw new Error(`protobuf: unsupported wire type ${wire}`)
    }
  }
  return out
}

const sub = (fs: Field[], n: number): Buffer[] => fs.filter((f) => f.field === n && f.wire === 2).map((f) => f.bytes as Buffer)
const str = (fs: Field[], n: number): string => sub(fs, n).at(-1)?.toString('utf8') ?? ''
const int = (fs: Field[], n: number): bigint => fs.filter((f) => f.field === n && f.int !== undefined).at(-1)?.int ?? 0n

export function decodeProtobufTraces (buf: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = []
  for (const rsBuf of sub(fields(buf), 1)) {
    const rs = fields(rsBuf)
    const resourceBuf = sub(rs, 1).at(-1)
    const resource = resourceBuf === undefined ? {} : pbAttributes(sub(fields(resourceBuf), 1))
    for (const ssBuf of sub(rs, 2)) {
      const ss = fields(ssBuf)
      const scopeBuf = sub(ss, 1).at(-1)
      const scope = scopeBuf === undefined ? '' : str(fields(scopeBuf), 1)
      for (const spanBuf of sub(ss, 2)) {
        const s = fields(spanBuf)
        const statusBuf = sub(s, 15).at(-1)
        const status = statusBuf === undefined ? [] : fields(statusBuf)
        out.push({
          traceId: sub(s, 1).at(-1)?.toString('hex') ?? '',
          spanId: sub(s, 2).at(-1)?.toString('hex') ?? '',
          parentSpanId: sub(s, 4).at(-1)?.toString('hex') ?? '',
          name: str(s, 5),
          kind: Number(int(s, 6)),
          attributes: pbAttributes(sub(s, 9)),
          status: { code: Number(int(status, 3)), message: str(status, 2) },
          resource,
          scope,
        })
      }
    }
  }
  return out
}

function pbAttributes (kvs: Buffer[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {}
  for (const kvBuf of kvs) {
    const kv = fields(kvBuf)
    const valueBuf = sub(kv, 2).at(-1)
    out[str(kv, 1)] = valueBuf === undefined ? null : pbValue(valueBuf)
  }
  return out
}

function pbValue (buf: Buffer): AttributeValue {
  const f = fields(buf).at(-1)
  if (f === undefined) return null
  switch (f.field) {
    case 1: return (f.bytes as Buffer).toString('utf8')
    case 2: return f.int !== 0n
    case 3: {
      const signed = BigInt.asIntN(64, f.int as bigint)
      return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(signed) : signed
    }
    case 4: return (f.bytes as Buffer).readDoubleLE(0)
    case 5: return sub(fields(f.bytes as Buffer), 1).map(pbValue)
    case 6: return pbAttributes(sub(fields(f.bytes as Buffer), 1))
    case 7: return (f.bytes as Buffer).toString('base64')
    default: return null
  }
}
