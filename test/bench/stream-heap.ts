/**
 * Where the memory of an idle GET stream goes (issue 17): the gateway as the memory section runs
 * it (memory.ts: dist/ when fresh, deploy/Dockerfile's NODE_OPTIONS, the same YAML, the mock
 * upstream of upstream.ts and the stream client of streams.ts, each a process of its own), with
 * heap-probe.mjs imported: each probe is two full GCs, then the process's figures, then a heap
 * snapshot. `node test/bench/stream-heap.ts` (it builds dist/ first).
 *   probe 1  after the warm-up POSTs               (the memory section's "after the requests")
 *   probe 2  with N idle GET streams open          → RSS, heap, external per stream; the objects
 *            new since probe 1 (by snapshot node id), by type, per stream
 *   probe 3  after closing them all and a rest     → what is still retained vs probe 1, and the
 *            path from a GC root to a few of those objects
 *   then, for STREAM_HEAP_ROUNDS > 1, the same again (no snapshots unless asked).
 *
 * Environment:
 *   STREAM_HEAP_STREAMS=1000  streams per round     STREAM_HEAP_ROUNDS=1
 *   STREAM_HEAP_REQUESTS=2000 POSTs before probe 1  STREAM_HEAP_SETTLE=5 seconds of rest before a probe
 *   STREAM_HEAP_SNAPSHOTS=1   0: figures only (faster; every round then probes without snapshots)
 *   STREAM_HEAP_TOP=25        rows per table        STREAM_HEAP_KEEP=1 keep the temp dir
 *   STREAM_HEAP_BUILD=1       0: run dist/ as it is (else `npm run build` first)
 *   BENCH_GATEWAY_FLAGS       as for npm run bench
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePorts, gatewayNodeFlags, httpOk, intEnv } from './common.ts'
import { rssBytes } from './procs.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('./', import.meta.url))
const env = process.env
const STREAMS = intEnv(env, 'STREAM_HEAP_STREAMS', 1000, 1)
const ROUNDS = intEnv(env, 'STREAM_HEAP_ROUNDS', 1, 1)
const REQUESTS = intEnv(env, 'STREAM_HEAP_REQUESTS', 2000, 0)
const SETTLE = intEnv(env, 'STREAM_HEAP_SETTLE', 5, 0)
const SNAPSHOTS = env.STREAM_HEAP_SNAPSHOTS !== '0'
const TOP = intEnv(env, 'STREAM_HEAP_TOP', 25, 1)
const BUILD = env.STREAM_HEAP_BUILD !== '0'
const KiB = 1024
const MiB = 1048576

interface Probe {
  n: number
  memory: NodeJS.MemoryUsage
  status: { VmRSS: number; RssAnon: number; RssFile: number }
  maps: Record<string, number>
  heap: { total_heap_size: number; used_heap_size: number; malloced_memory: number; external_memory: number }
  spaces: Record<string, { size: number; used: number }>
  handles: Record<string, number>
  snapshot?: string
}

// ---------------------------------------------------------------------------------------------
// heap snapshots: node id → (group, self size), and the shortest path from the root to a node

interface Snapshot {
  readonly ids: Int32Array | Float64Array
  readonly size: Float64Array
  readonly group: Int32Array
  readonly groups: string[]
  readonly count: number
  /** what holds a node: parent node index and the edge's name, along a shortest path from the root */
  parent?: Int32Array
  parentEdge?: string[]
  readonly raw: HeapSnapshotJson
  readonly firstEdge: Int32Array
}

interface HeapSnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } }
  nodes: number[]
  edges: number[]
  strings: string[]
}

const BY_TYPE_ONLY = new Set(['string', 'concatenated string', 'sliced string', 'number', 'code', 'regexp', 'symbol', 'bigint'])

function readSnapshot (file: string): Snapshot {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshotJson
  const meta = raw.snapshot.meta
  const nf = meta.node_fields.length
  const iType = meta.node_fields.indexOf('type')
  const iName = meta.node_fields.indexOf('name')
  const iId = meta.node_fields.indexOf('id')
  const iSize = meta.node_fields.indexOf('self_size')
  const iEdges = meta.node_fields.indexOf('edge_count')
  const types = meta.node_types[0]
  const count = raw.nodes.length / nf
  const ids = new Float64Array(count)
  const size = new Float64Array(count)
  const group = new Int32Array(count)
  const firstEdge = new Int32Array(count + 1)
  const groupIndex = new Map<string, number>()
  const groups: string[] = []
  const ef = meta.edge_fields.length
  let edge = 0
  for (let i = 0; i < count; i++) {
    const b = i * nf
    const type = types[raw.nodes[b + iType]!]!
    const name = raw.strings[raw.nodes[b + iName]!]!
    let key: string
    if (BY_TYPE_ONLY.has(type)) key = `(${type})`
    else if (type === 'object') key = name
    else if (type === 'closure') key = `closure ${name === '' ? '(anonymous)' : name}`
    else key = `${type} ${name.length > 60 ? `${name.slice(0, 60)}…` : name}`
    let g = groupIndex.get(key)
    if (g === undefined) {
      g = groups.length
      groups.push(key)
      groupIndex.set(key, g)
    }
    ids[i] = raw.nodes[b + iId]!
    size[i] = raw.nodes[b + iSize]!
    group[i] = g
    firstEdge[i] = edge
    edge += raw.nodes[b + iEdges]! * ef
  }
  firstEdge[count] = edge
  return { ids, size, group, groups, count, raw, firstEdge }
}

/** A breadth-first walk from the root over strong edges: each node's parent on a shortest path. */
function paths (s: Snapshot): void {
  const meta = s.raw.snapshot.meta
  const ef = meta.edge_fields.length
  const iType = meta.edge_fields.indexOf('type')
  const iName = meta.edge_fields.indexOf('name_or_index')
  const iTo = meta.edge_fields.indexOf('to_node')
  const edgeTypes = meta.edge_types[0]
  const nf = meta.node_fields.length
  const parent = new Int32Array(s.count).fill(-1)
  const parentEdge: string[] = new Array<string>(s.count)
  const queue = new Int32Array(s.count)
  let head = 0
  let tail = 0
  queue[tail++] = 0
  parent[0] = 0
  while (head < tail) {
    const i = queue[head++]!
    for (let e = s.firstEdge[i]!; e < s.firstEdge[i + 1]!; e += ef) {
      const type = edgeTypes[s.raw.edges[e + iType]!]!
      if (type === 'weak' || type === 'shortcut') continue
      const to = s.raw.edges[e + iTo]! / nf
      if (parent[to] !== -1) continue
      parent[to] = i
      const name = s.raw.edges[e + iName]!
      parentEdge[to] = type === 'element' || type === 'hidden' ? `[${name}]` : `.${s.raw.strings[name]}`
      queue[tail++] = to
    }
  }
  s.parent = parent
  s.parentEdge = parentEdge
}

function pathTo (s: Snapshot, node: number): string {
  if (s.parent === undefined) paths(s)
  const parts: string[] = []
  let i = node
  for (let hops = 0; i !== 0 && hops < 14; hops++) {
    const p = s.parent![i]!
    if (p === -1) return `${s.groups[s.group[node]!]} (unreachable by strong edges)`
    parts.unshift(`${s.parentEdge![i]} → ${s.groups[s.group[i]!]}`)
    i = p
  }
  return (i === 0 ? '(root)' : '…') + parts.join(' ')
}

interface Row { key: string; count: number; bytes: number; sample: number }

/** The nodes of `after` whose id `before` does not hold, by group. */
function newObjects (before: Snapshot, after: Snapshot): Row[] {
  const old = new Set<number>()
  for (let i = 0; i < before.count; i++) old.add(before.ids[i]!)
  const rows = new Map<number, Row>()
  for (let i = 0; i < after.count; i++) {
    if (old.has(after.ids[i]!)) continue
    const g = after.group[i]!
    let r = rows.get(g)
    if (r === undefined) {
      r = { key: after.groups[g]!, count: 0, bytes: 0, sample: i }
      rows.set(g, r)
    }
    r.count++
    r.bytes += after.size[i]!
  }
  return [...rows.values()].sort((a, b) => b.bytes - a.bytes)
}

/** Per group, `after` − `before` in count and self size. */
function deltas (before: Snapshot, after: Snapshot): Row[] {
  const rows = new Map<string, Row>()
  const add = (s: Snapshot, sign: number): void => {
    for (let i = 0; i < s.count; i++) {
      const key = s.groups[s.group[i]!]!
      let r = rows.get(key)
      if (r === undefined) {
        r = { key, count: 0, bytes: 0, sample: -1 }
        rows.set(key, r)
      }
      r.count += sign
      r.bytes += sign * s.size[i]!
      if (sign > 0) r.sample = i
    }
  }
  add(after, 1)
  add(before, -1)
  return [...rows.values()].filter((r) => r.bytes !== 0 || r.count !== 0).sort((a, b) => Math.abs(b.bytes) - Math.abs(a.bytes))
}

function table (title: string, rows: Row[], per: number, top: number): string {
  const total = rows.reduce((s, r) => s + r.bytes, 0)
  const lines = [`${title}: ${(total / per).toFixed(0)} B per stream in ${rows.reduce((s, r) => s + r.count, 0)} objects (${(total / MiB).toFixed(2)} MiB)`]
  lines.push(`  ${'B/stream'.padStart(9)} ${'objs/stream'.padStart(11)} ${'objects'.padStart(8)}  type / constructor`)
  for (const r of rows.slice(0, top)) {
    lines.push(`  ${(r.bytes / per).toFixed(1).padStart(9)} ${(r.count / per).toFixed(2).padStart(11)} ${String(r.count).padStart(8)}  ${r.key}`)
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------
// the processes

function start (name: string, args: string[], extraEnv: NodeJS.ProcessEnv, log: string): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  child.stdout!.on('data', (b: Buffer) => out.push(b))
  child.stderr!.on('data', (b: Buffer) => out.push(b))
  child.on('exit', () => { writeFileSync(log, Buffer.concat(out)) })
  child.on('error', (err) => { console.error(`${name}: ${err.message}`) })
  return child
}

async function until (what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const t = Date.now() + ms
  while (Date.now() < t) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function post<T> (url: string): Promise<T> {
  const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(600_000) })
  if (!res.ok) throw new Error(`${url}: ${res.status}`)
  return await res.json() as T
}

const dir = mkdtempSync(join(tmpdir(), 'stream-heap-'))
const [upstreamPort, clientPort, gwPort, adminPort] = await freePorts(4) as [number, number, number, number]
const children: ChildProcess[] = []
try {
  children.push(start('upstream', [join(HERE, 'upstream.ts'), String(upstreamPort)], {}, join(dir, 'upstream.log')))
  children.push(start('client', [join(HERE, 'streams.ts'), String(clientPort)], {}, join(dir, 'client.log')))
  const config = join(dir, 'gateway.yaml')
  // the memory section's gateway (memory.ts gatewayYaml)
  writeFileSync(config, `publicUrl: http://127.0.0.1:${gwPort}
listen: { host: 127.0.0.1, port: ${gwPort} }
admin: { host: 127.0.0.1, port: ${adminPort} }
limits: { maxStreamsPerPrincipal: ${STREAMS + 100} }
servers:
  open:
    upstream: { url: http://127.0.0.1:${upstreamPort}/mcp, maxConnections: ${Math.min(65_536, Math.max(1024, STREAMS + 100))} }
    auth: none
    tools:
      - allow: ["*"]
`)
  const flags = [...gatewayNodeFlags(ROOT), '--expose-gc', '--import', join(HERE, 'heap-probe.mjs')]
  // dist/ as bin/portcullis.js runs it when fresh — directly: in a shared working tree, a source
  // edited after the build would make bin/portcullis.js run the sources (~40 MB more)
  if (BUILD) execFileSync(process.execPath, [join(ROOT, 'bin/build.js')], { cwd: ROOT, stdio: 'inherit' })
  const main = join(ROOT, 'dist/src/cli/main.js')
  const launch = `const cli = await import(${JSON.stringify(main)}); process.exitCode = await cli.main(['start', '--config', ${JSON.stringify(config)}])`
  const gw = start('gateway', [...flags, '--input-type=module', '-e', launch],
    { PORTCULLIS_LOG_LEVEL: 'info', HEAP_PROBE_DIR: dir, HEAP_PROBE_SNAPSHOTS: SNAPSHOTS ? '1' : '0' }, join(dir, 'gateway.log'))
  children.push(gw)
  // the log as the bench has it: read (here, discarded) by another process
  gw.stdout!.resume()
  await until('the upstream', () => httpOk(`http://127.0.0.1:${upstreamPort}/stats`), 15_000)
  await until('the client', () => httpOk(`http://127.0.0.1:${clientPort}/ready`), 15_000)
  await until('the gateway', () => httpOk(`http://127.0.0.1:${adminPort}/readyz`), 30_000)
  console.log(`gateway pid ${gw.pid} (${flags.join(' ')}; dist/${BUILD ? ', just built' : ''}), ${STREAMS} streams × ${ROUNDS} rounds, ${REQUESTS} POSTs first; files in ${dir}`)

  let probes = 0
  const probe = async (label: string): Promise<Probe> => {
    await sleep(SETTLE * 1000)
    probes++
    const file = join(dir, `probe-${probes}.json`)
    const rssBefore = rssBytes(gw.pid!)
    gw.kill('SIGUSR2')
    await until(`probe ${probes}`, async () => existsSync(file), 300_000)
    await sleep(200) // written in one call, but let it land
    const p = JSON.parse(readFileSync(file, 'utf8')) as Probe
    console.log(`probe ${probes} (${label}): RSS ${(p.status.VmRSS / MiB).toFixed(1)} MiB (before the probe's GCs ${((rssBefore ?? 0) / MiB).toFixed(1)}; anon ${(p.status.RssAnon / MiB).toFixed(1)}), heap used ${(p.heap.used_heap_size / MiB).toFixed(2)} MiB of ${(p.heap.total_heap_size / MiB).toFixed(1)} committed, ` +
      `external ${(p.memory.external / MiB).toFixed(2)} MiB (array buffers ${(p.memory.arrayBuffers / MiB).toFixed(2)}), malloced ${(p.heap.malloced_memory / MiB).toFixed(2)} MiB; handles ${JSON.stringify(p.handles)}; ` +
      `resident by mapping (MiB) ${Object.entries(p.maps).map(([k, v]) => `${k} ${(v / MiB).toFixed(1)}`).join(', ')}`)
    return p
  }
  const upstreamStreams = async (): Promise<number> => (await (await fetch(`http://127.0.0.1:${upstreamPort}/stats`)).json() as { streams: number }).streams
  const url = encodeURIComponent(`http://127.0.0.1:${gwPort}/mcp/open`)
  const perStream = (a: Probe, b: Probe): string => {
    const d = (f: (p: Probe) => number): number => (f(b) - f(a)) / STREAMS
    const rss = d((p) => p.status.VmRSS)
    const used = d((p) => p.heap.used_heap_size)
    const committed = d((p) => p.heap.total_heap_size)
    const ext = d((p) => p.memory.external)
    return `per stream: RSS ${(rss / KiB).toFixed(2)} KiB = heap used ${(used / KiB).toFixed(2)} KiB (committed ${(committed / KiB).toFixed(2)}) + ` +
      `external ${(ext / KiB).toFixed(2)} KiB + the rest (native: sockets, parsers, malloc) ${((rss - committed - ext) / KiB).toFixed(2)} KiB ` +
      `[RSS − heap used: ${((rss - used) / KiB).toFixed(2)} KiB]; spaces used/stream: ${Object.entries(b.spaces).map(([k, v]) => `${k.replace('_space', '')} ${((v.used - (a.spaces[k]?.used ?? 0)) / STREAMS).toFixed(0)}`).join(', ')}`
  }

  const first = await probe('fresh')
  if (REQUESTS > 0) {
    const r = await post<{ ok: number }>(`http://127.0.0.1:${clientPort}/posts?n=${REQUESTS}&c=10&url=${url}`)
    if (r.ok !== REQUESTS) throw new Error(`only ${r.ok}/${REQUESTS} POSTs answered 200`)
  }
  let before = await probe(`after ${REQUESTS} POSTs`)
  const base = before
  if (SNAPSHOTS && REQUESTS > 0 && first.snapshot !== undefined && before.snapshot !== undefined) {
    const f = readSnapshot(first.snapshot)
    const r = readSnapshot(before.snapshot)
    const left = newObjects(f, r)
    console.log(`\n${table(`what the ${REQUESTS} POSTs left alive (objects new since fresh; "per stream" is per POST)`, left, REQUESTS, TOP)}`)
    console.log(`\n${table('after the POSTs − fresh, by type (per POST)', deltas(f, r), REQUESTS, TOP)}`)
    console.log('\n  what holds them:')
    for (const row of left.slice(0, 12)) console.log(`   ${row.key}: ${pathTo(r, row.sample)}`)
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await post<{ open: number; statuses: unknown }>(`http://127.0.0.1:${clientPort}/open?n=${STREAMS}&c=100&url=${url}`)
    if (r.open !== STREAMS || await upstreamStreams() !== STREAMS) throw new Error(`round ${round}: ${r.open} open (${JSON.stringify(r.statuses)}), ${await upstreamStreams()} at the upstream`)
    const open = await probe(`round ${round}: ${STREAMS} streams open`)
    console.log(`  round ${round} ${perStream(before, open)}`)
    await post(`http://127.0.0.1:${clientPort}/close`)
    await until('the upstream to see the streams closed', async () => await upstreamStreams() === 0, 60_000)
    const closed = await probe(`round ${round}: closed`)
    console.log(`  round ${round} after the close vs before round 1: heap used +${((closed.heap.used_heap_size - base.heap.used_heap_size) / MiB).toFixed(2)} MiB, vs fresh +${((closed.heap.used_heap_size - first.heap.used_heap_size) / MiB).toFixed(2)} MiB, RSS +${((closed.status.VmRSS - base.status.VmRSS) / MiB).toFixed(1)} MiB`)
    if (SNAPSHOTS && open.snapshot !== undefined && before.snapshot !== undefined && closed.snapshot !== undefined) {
      const a = readSnapshot(before.snapshot)
      const b = readSnapshot(open.snapshot)
      console.log(`\n${table(`round ${round}, objects new since the probe before (by snapshot id), alive with the streams open`, newObjects(a, b), STREAMS, TOP)}`)
      console.log(`\n${table(`round ${round}, streams open − before, by type (count and self size)`, deltas(a, b), STREAMS, TOP)}`)
      const c = readSnapshot(closed.snapshot)
      const kept = newObjects(a, c)
      console.log(`\n${table(`round ${round}, objects new since before the round, still alive after the close (per stream of the round)`, kept, STREAMS, TOP)}`)
      console.log(`\n${table(`round ${round}, after the close − before, by type`, deltas(a, c), STREAMS, TOP)}`)
      console.log('\n  what holds them (a shortest path from the root, for the largest groups):')
      for (const row of kept.slice(0, 12)) console.log(`   ${row.key}: ${pathTo(c, row.sample)}`)
      if (round === 1) {
        const f = first.snapshot === undefined ? undefined : readSnapshot(first.snapshot)
        if (f !== undefined) console.log(`\n${table('after the close − fresh (before the POSTs), by type; "per stream" is per stream of the round', deltas(f, c), STREAMS, TOP)}`)
      }
    }
    before = closed
  }
} finally {
  for (const c of children.reverse()) c.kill('SIGTERM')
  await sleep(500)
  if (env.STREAM_HEAP_KEEP === '1') console.log(`kept ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
}
