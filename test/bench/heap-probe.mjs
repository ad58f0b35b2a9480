// Bench only (never shipped): `node --expose-gc --import` this into the gateway, and each SIGUSR2
// runs two full GCs, then writes the process's memory figures to $HEAP_PROBE_DIR/probe-N.json and,
// when HEAP_PROBE_SNAPSHOTS=1, a heap snapshot to $HEAP_PROBE_DIR/snap-N.heapsnapshot (N = 1, 2, …),
// the figures first (a snapshot costs memory of its own). test/bench/stream-heap.ts reads them.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import v8 from 'node:v8'

const dir = process.env.HEAP_PROBE_DIR
let n = 0

function status () {
  const out = {}
  for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/.exec(line)
    if (m !== null) out[m[1]] = Number(m[2]) * 1024
  }
  return out
}

/** Resident memory by mapping: malloc's main heap, other anonymous mappings by size, files. */
function maps () {
  const out = { heap: 0, anonLarge: 0, anonSmall: 0, file: 0, stack: 0, other: 0 }
  let kind = 'other'
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (m !== null) {
      const size = parseInt(m[2], 16) - parseInt(m[1], 16)
      const path = m[3]
      kind = path === '[heap]' ? 'heap' : path === '[stack]' ? 'stack' : path === '' ? (size >= 1048576 ? 'anonLarge' : 'anonSmall') : path.startsWith('/') ? 'file' : 'other'
      continue
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line)
    if (r !== null) out[kind] += Number(r[1]) * 1024
  }
  return out
}

if (dir !== undefined) {
  process.on('SIGUSR2', () => {
    n++
    globalThis.gc?.()
    globalThis.gc?.()
    // the heap first: reading /proc allocates (smaps is a string of a megabyte or more)
    const probe = {
      n,
      memory: process.memoryUsage(),
      heap: v8.getHeapStatistics(),
      spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }])),
    }
    probe.status = status()
    probe.maps = maps()
    probe.handles = process.getActiveResourcesInfo().reduce((acc, r) => { acc[r] = (acc[r] ?? 0) + 1; return acc }, {})
    if (process.env.HEAP_PROBE_SMAPS === '1') writeFileSync(join(dir, `smaps-${n}.txt`), readFileSync('/proc/self/smaps'))
    if (process.env.HEAP_PROBE_SNAPSHOTS === '1') probe.snapshot = v8.writeHeapSnapshot(join(dir, `snap-${n}.heapsnapshot`))
    writeFileSync(join(dir, `probe-${n}.json`), JSON.stringify(probe))
  })
}
