import { parseArgs } from 'node:util'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { VERSION } from '../version.ts'
import type { CliIo } from './io.ts'

/**
 * `portcullis call URL TOOL [JSON]`: connect to an MCP endpoint with the official SDK client,
 * call one tool and print its result — the quickest way to see a tool call through the gateway.
 * Exit 0 on success, 1 when the call failed (an error result or a JSON-RPC error), 2 on usage.
 */
export async function runCall (argv: string[], io: CliIo): Promise<number> {
  let url: URL, tool: string, args: Record<string, unknown>, token: string | undefined
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { token: { type: 'string' } }, allowPositionals: true, strict: true })
    const [rawUrl, rawTool, rawArgs] = positionals
    if (rawUrl === undefined || rawTool === undefined || positionals.length > 3) throw new Error('expected URL TOOL [JSON]')
    url = new URL(rawUrl)
    tool = rawTool
    const parsed: unknown = JSON.parse(rawArgs ?? '{}')
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('JSON arguments must be an object')
    args = parsed as Record<string, unknown>
    token = values.token ?? io.env.PORTCULLIS_TOKEN
  } catch (err) {
    io.stderr.write(`portcullis call: ${(err as Error).message}\n`)
    return 2
  }
  const transport = new StreamableHTTPClientTransport(url, token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  const client = new Client({ name: 'portcullis-call', version: VERSION })
  try {
    await client.connect(transport)
    const result = await client.callTool({ name: tool, arguments: args })
    io.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
    return result.isError === true ? 1 : 0
  } catch (err) {
    io.stderr.write(`portcullis call: ${(err as Error).message}\n`)
    return 1
  } finally {
    await client.close().catch(() => {})
  }
}
