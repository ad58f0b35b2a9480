// The README's table of answers to bad input and failures ("Answers to bad input and failures")
// and the error registry (src/errors.ts) say the same thing, both ways: every row names at least
// one code, every code it names is in the registry with the HTTP status and JSON-RPC code the row
// gives, and every code of the registry has a row.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { gatewayErrors, type GatewayErrorCode } from '../../src/errors.ts'

const root = resolve(import.meta.dirname, '../..')

interface Row { readonly line: number; readonly text: string; readonly cells: Record<string, string> }

/** The first table under `heading`: its rows as cells by column name. */
function tableUnder (markdown: string, heading: string): Row[] {
  const lines = markdown.split('\n')
  const start = lines.indexOf(heading)
  if (start === -1) throw new Error(`README has no "${heading}"`)
  const first = lines.findIndex((l, i) => i > start && l.startsWith('|'))
  const cellsOf = (l: string): string[] => l.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim())
  const columns = cellsOf(lines[first] ?? '')
  const rows: Row[] = []
  for (let i = first + 2; i < lines.length && lines[i]?.startsWith('|') === true; i++) {
    const cells = cellsOf(lines[i] ?? '')
    rows.push({ line: i + 1, text: cells[0] ?? '', cells: Object.fromEntries(columns.map((c, j) => [c, cells[j] ?? ''])) })
  }
  return rows
}

const rows = tableUnder(readFileSync(join(root, 'README.md'), 'utf8'), '## Answers to bad input and failures')
const registry = gatewayErrors as Record<string, { readonly statusCode: number; readonly rpcCode: number }>

t.test('the table has its columns and rows', async (t) => {
  t.ok(rows.length > 0, 'rows')
  t.same(Object.keys(rows[0]?.cells ?? {}), ['Case', 'HTTP', 'JSON-RPC code', 'Code'])
})

t.test('every row names codes of the registry, with their HTTP status and JSON-RPC code', async (t) => {
  for (const row of rows) {
    const where = `README.md:${row.line} (${row.text})`
    const codes = [...(row.cells.Code ?? '').matchAll(/PORTCULLIS_ERR_[A-Z0-9_]+/g)].map((m) => m[0])
    t.ok(codes.length > 0, `${where} names a code`)
    // The HTTP cell starts with the status, unless the answer goes into a stream already open (no status of its own).
    const status = /^(\d{3})\b/.exec(row.cells.HTTP ?? '')?.[1]
    const rpc = /^(-?\d+)$/.exec(row.cells['JSON-RPC code'] ?? '')?.[1]
    t.ok(rpc !== undefined, `${where} gives a JSON-RPC code`)
    for (const code of codes) {
      const spec = registry[code]
      if (spec === undefined) {
        t.fail(`${where}: ${code} is not in src/errors.ts`)
        continue
      }
      if (status !== undefined) t.equal(Number(status), spec.statusCode, `${where}: ${code} HTTP status`)
      t.equal(Number(rpc), spec.rpcCode, `${where}: ${code} JSON-RPC code`)
    }
  }
})

t.test('every code of the registry has a row', async (t) => {
  const documented = new Set(rows.flatMap((r) => [...(r.cells.Code ?? '').matchAll(/PORTCULLIS_ERR_[A-Z0-9_]+/g)].map((m) => m[0])))
  for (const code of Object.keys(gatewayErrors) as GatewayErrorCode[]) {
    t.ok(documented.has(code), `${code} is in the README's table`)
  }
})
