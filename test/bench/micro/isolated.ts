import { execFileSync } from 'node:child_process'
import { bench } from './loop.ts'

/**
 * Run each case of a micro-benchmark in a process of its own: in one process, code the cases
 * share (pino's write, prom-client's inc) turns polymorphic after the first case and slows the
 * later ones. The parent runs the children one after another, `rounds=N` times (default 1), each
 * round in the opposite order of the one before (`reverse`: the first one too), and returns each
 * case's least µs per op over the rounds (the machine's noise only adds). In a child, this runs
 * its case and exits.
 */
export function isolated (file: string, cases: ReadonlyArray<readonly [string, () => () => void]>): Map<string, number> {
  const at = process.argv.indexOf('--case')
  if (at !== -1) {
    const [label, make] = cases[Number(process.argv[at + 1])]!
    console.log(`µs/op ${bench(label, make())}`)
    process.exit(0)
  }
  const rounds = Number(process.argv.find((a) => a.startsWith('rounds='))?.slice('rounds='.length) ?? 1)
  let order = cases.map((_, i) => i)
  if (process.argv.includes('reverse')) order.reverse()
  const results = new Map<string, number>()
  for (let round = 0; round < rounds; round++) {
    for (const i of order) {
      const out = execFileSync(process.execPath, [file, '--case', String(i)], { encoding: 'utf8' }).trimEnd().split('\n')
      console.log(out.slice(0, -1).join('\n'))
      const label = cases[i]![0]
      results.set(label, Math.min(results.get(label) ?? Infinity, Number(out.at(-1)!.slice('µs/op '.length))))
    }
    order = order.toReversed()
  }
  if (rounds > 1) {
    console.log(`least of ${rounds} rounds:`)
    for (const [label] of cases) console.log(`${label.padEnd(44)} ${results.get(label)!.toFixed(2).padStart(8)} µs/op`)
  }
  return results
}
