/**
 * The coverage gate of `npm test`, after tap: tap reports coverage of everything the tests
 * load (test helpers, bench code) and can only demand 100 %; this reads its json-summary and
 * fails when the gateway's own code — src/ — falls below the floors. Raise a floor when the
 * coverage rises; lowering one needs a reason in the commit.
 */
import { readFileSync } from 'node:fs'
import { relative, resolve } from 'node:path'

const FLOORS = { lines: 97, statements: 97, functions: 95, branches: 89 } as const
type Metric = keyof typeof FLOORS

interface Counts { total: number, covered: number }
const root = resolve(import.meta.dirname, '..')
const file = resolve(root, '.tap/report/coverage-summary.json')

let summary: unknown
try {
  summary = JSON.parse(readFileSync(file, 'utf8'))
} catch (err) {
  console.error(`coverage gate: cannot read ${relative(root, file)} (did tap run with the json-summary report?): ${(err as Error).message}`)
  process.exit(1)
}
if (typeof summary !== 'object' || summary === null) throw new Error('coverage gate: the summary is not an object')

const sums = Object.fromEntries(Object.keys(FLOORS).map((m) => [m, { total: 0, covered: 0 }])) as Record<Metric, Counts>
let files = 0
for (const [path, entry] of Object.entries(summary)) {
  if (path === 'total' || !relative(root, path).startsWith('src/')) continue
  files++
  for (const metric of Object.keys(FLOORS) as Metric[]) {
    const counts = (entry as Record<string, Counts | undefined>)[metric]
    sums[metric].total += counts?.total ?? 0
    sums[metric].covered += counts?.covered ?? 0
  }
}
if (files === 0) {
  console.error('coverage gate: no file under src/ in the summary')
  process.exit(1)
}

let failed = false
const parts: string[] = []
for (const metric of Object.keys(FLOORS) as Metric[]) {
  const { total, covered } = sums[metric]
  const pct = total === 0 ? 100 : (100 * covered) / total
  const ok = pct >= FLOORS[metric]
  failed ||= !ok
  parts.push(`${metric} ${pct.toFixed(2)} % (floor ${FLOORS[metric]})${ok ? '' : ' BELOW'}`)
}
console.log(`coverage gate, src/ (${files} files): ${parts.join(', ')}`)
if (failed) process.exit(1)
