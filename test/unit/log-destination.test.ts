import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, constants, openSync, readFileSync, statSync } from 'node:fs'
import fs from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { LogDestination } from '../../src/telemetry/log-destination.ts'
import { slowPipe as openSlowPipe, type SlowPipe } from '../helpers/slow-pipe.ts'

// The gateway's log destination (src/telemetry/log-destination.ts) hands pino's lines to sonic-boom
// as bytes. Whatever pino writes must reach the file descriptor byte for byte, in order, buffered
// as configured: nothing below minLength until a flush, everything after one.

function destinationFile (t: Test, options: { minLength: number; periodicFlush: number }): { dest: LogDestination; path: string } {
  const dir = t.testdir()
  const path = join(dir, 'out.log')
  const dest = new LogDestination({ fd: openSync(path, 'w'), ...options })
  // end() stops the periodic flush and closes the descriptor (sonic-boom does).
  t.teardown(() => { dest.end() })
  return { dest, path }
}

const records: ReadonlyArray<Record<string, string | number>> = [
  { 'gen_ai.tool.name': 'create_issue', 'jsonrpc.request.id': '1' },
  { 'gen_ai.tool.name': 'résumé_tool', 'mcp.session.id': 'sess-ü' }, // two-byte UTF-8
  { 'gen_ai.tool.name': '検索', 'portcullis.server': 'チケット' }, // three-byte UTF-8
  { 'gen_ai.tool.name': 'emoji 😀 tool', outcome: 'success' }, // four-byte UTF-8 (a surrogate pair)
  { 'jsonrpc.request.id': 'line\nbreak\u2028sep\u0000nul"quote\\', duration_s: 0.000123 },
  { 'gen_ai.tool.name': 'lone \ud800 surrogate' }, // pino writes it raw; UTF-8 makes it U+FFFD either way
  { 'gen_ai.tool.name': 'x'.repeat(9000) }, // one line longer than minLength
]

t.test('every line pino writes reaches the descriptor byte for byte and in order', async (t) => {
  const { dest, path } = destinationFile(t, { minLength: 4096, periodicFlush: 0 })
  const expected: string[] = []
  const logger = pino({ level: 'info', base: undefined, timestamp: false }, dest)
  const reference = pino({ level: 'info', base: undefined, timestamp: false }, { write (line: string) { expected.push(line) } })
  for (let round = 0; round < 20; round++) {
    for (const record of records) {
      logger.info(record, `round ${round}`)
      reference.info(record, `round ${round}`)
    }
  }
  logger.flush()
  const written = readFileSync(path)
  t.ok(written.equals(Buffer.from(expected.join(''))), `${expected.length} lines, ${written.length} bytes, identical to what pino wrote`)
  t.equal(written.toString('utf8').split('\n').length - 1, records.length * 20, 'one newline per line')
})

t.test('lines wait in the buffer below minLength and go out at minLength, at a flush, and periodically', async (t) => {
  const { dest, path } = destinationFile(t, { minLength: 4096, periodicFlush: 0 })
  const logger = pino({ level: 'info', base: undefined, timestamp: false }, dest)
  const line = (i: number): void => { logger.info({ 'jsonrpc.request.id': String(i), pad: 'p'.repeat(100) }, 'tool call') }
  line(0)
  t.equal(statSync(path).size, 0, 'one short line is buffered, not written')
  let i = 1
  while (statSync(path).size === 0 && i < 100) line(i++)
  const first = statSync(path).size
  t.ok(first >= 4096, `the buffer went out once it held minLength bytes (${first} bytes after ${i} lines)`)
  t.ok(i > 20, 'and not before')
  line(i++)
  t.equal(statSync(path).size, first, 'the next line waits again')
  logger.flush()
  t.equal(readFileSync(path, 'utf8').split('\n').length - 1, i, 'logger.flush() wrote out every pending line')

  const periodic = destinationFile(t, { minLength: 4096, periodicFlush: 20 })
  const timed = pino({ level: 'info', base: undefined, timestamp: false }, periodic.dest)
  timed.info({ 'jsonrpc.request.id': 'late' }, 'tool call')
  t.equal(statSync(periodic.path).size, 0, 'buffered')
  await sleep(200)
  t.match(readFileSync(periodic.path, 'utf8'), /"jsonrpc.request.id":"late"/, 'periodicFlush wrote it out without another line')
})

t.test('flushSync writes out what is pending', async (t) => {
  const { dest, path } = destinationFile(t, { minLength: 4096, periodicFlush: 0 })
  dest.write('{"a":"é"}\n')
  t.equal(statSync(path).size, 0)
  dest.flushSync()
  t.equal(readFileSync(path, 'utf8'), '{"a":"é"}\n')
})

t.test('end() writes out what is pending and stops the periodic flush', async (t) => {
  const path = join(t.testdir(), 'out.log')
  const dest = new LogDestination({ fd: openSync(path, 'w'), minLength: 4096, periodicFlush: 10 })
  dest.write('{"last":"line"}\n')
  dest.end()
  t.equal(readFileSync(path, 'utf8'), '{"last":"line"}\n', 'the pending line is written at end()')
  await sleep(50) // a periodic flush after end() would write into a closed descriptor and throw
  t.pass('no flush after end()')
})

t.test('lines go to sonic-boom as bytes: no line takes its string path', async (t) => {
  // sonic-boom's string mode measures every line with Buffer.byteLength; its buffer mode never
  // does. Should a sonic-boom release drop or rename `contentMode: 'buffer'`, this fails.
  const { dest, path } = destinationFile(t, { minLength: 4096, periodicFlush: 0 })
  const logger = pino({ level: 'info', base: undefined, timestamp: false }, dest)
  const byteLength = Buffer.byteLength
  let measured = 0
  Buffer.byteLength = ((...args: Parameters<typeof byteLength>) => { measured++; return byteLength(...args) }) as typeof byteLength
  try {
    for (let i = 0; i < 200; i++) logger.info({ 'gen_ai.tool.name': '検索', i }, 'tool call') // past minLength: write(2)s too
    logger.flush()
  } finally {
    Buffer.byteLength = byteLength
  }
  t.equal(measured, 0, 'Buffer.byteLength never called')
  t.equal(readFileSync(path, 'utf8').split('\n').length - 1, 200, 'and every line written')
})

t.test('a reader gone (EPIPE) stops the logging, not the process', async (t) => {
  const fifo = join(t.testdir(), 'fifo')
  execFileSync('mkfifo', [fifo])
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const dest = new LogDestination({ fd: openSync(fifo, 'w'), minLength: 0, periodicFlush: 0 })
  dest.write('{"first":"line"}\n')
  closeSync(reader)
  for (let i = 0; i < 10; i++) dest.write('{"after":"the reader left"}\n')
  dest.flushSync()
  dest.end()
  t.pass('writes, flushSync and end after EPIPE do not throw')

  const path = join(t.testdir(), 'read-only.log')
  closeSync(openSync(path, 'w'))
  const fd = openSync(path, 'r')
  t.teardown(() => { closeSync(fd) })
  const readOnly = new LogDestination({ fd, minLength: 0, periodicFlush: 0 })
  t.throws(() => readOnly.write('{"a":"line"}\n'), { code: 'EBADF' }, 'any other error is thrown, as pino.destination does')
})

// A reader that falls behind (test/helpers/slow-pipe.ts). sonic-boom alone would stop the thread
// for 100 ms per EAGAIN, again and again: with the reader in this same thread, forever.

function slowPipe (t: Test): SlowPipe {
  const pipe = openSlowPipe(t.testdir())
  t.teardown(() => { pipe.close() })
  return pipe
}

/** A JSON line of about `size` bytes, numbered. */
const sized = (i: number, size: number, text = 'p'): string => `${JSON.stringify({ i, pad: text.repeat(Math.max(0, Math.ceil(size / Buffer.byteLength(text)) - 20)) })}\n`

const behindCases = [
  { name: 'short lines, buffered to 4 KiB', minLength: 4096, size: 300, text: 'p', drain: 'the next line' },
  { name: 'short lines, unbuffered', minLength: 0, size: 300, text: 'p', drain: 'the next line' },
  { name: 'lines longer than PIPE_BUF (partial writes)', minLength: 4096, size: 9000, text: 'p', drain: 'the next line' },
  { name: 'multi-byte UTF-8 lines', minLength: 4096, size: 700, text: '検索😀', drain: 'the next line' },
  { name: 'drained by the periodic flush', minLength: 4096, size: 300, text: 'p', drain: 'periodic flush' },
  { name: 'long lines drained by the periodic flush', minLength: 4096, size: 20_000, text: 'é', drain: 'periodic flush' },
] as const

for (const c of behindCases) {
  t.test(`a reader that falls behind never stops a write, and loses nothing: ${c.name}`, async (t) => {
    const pipe = slowPipe(t)
    const dest = new LogDestination({ fd: pipe.writer, minLength: c.minLength, periodicFlush: c.drain === 'periodic flush' ? 20 : 0 })
    const expected: string[] = []
    // four times what a pipe holds (64 KiB): returns at all only if no write waits for the reader
    while (Buffer.byteLength(expected.join('')) < 4 * 65_536) {
      expected.push(sized(expected.length, c.size, c.text))
      dest.write(expected.at(-1)!)
    }
    const whole = Buffer.byteLength(expected.join(''))
    const early = pipe.read().length
    t.ok(early >= 4096 && early < whole, `the pipe took what it could (${early} of ${whole} bytes); the rest waits`)
    t.equal(dest.dropped, 0, 'nothing dropped')
    // the reader catches up, a pipe's worth at a time; the bytes waiting go out at the next line or flush
    let got = pipe.read()
    for (let rounds = 0; got.length < Buffer.byteLength(expected.join('')) && rounds < 1_000; rounds++) {
      if (c.drain === 'the next line') {
        expected.push(sized(expected.length, c.size, c.text))
        dest.write(expected.at(-1)!)
      } else {
        await sleep(25)
      }
      got = pipe.read()
    }
    dest.flushSync() // what is left below minLength
    got = pipe.read()
    t.ok(got.equals(Buffer.from(expected.join(''))), `every line arrived, byte for byte and in order (${expected.length} lines, ${got.length} bytes)`)
    t.equal(dest.dropped, 0, 'none dropped')
    dest.end()
  })
}

t.test('past maxPendingBytes new lines are dropped whole and counted, and the count is reported once lines get through', async (t) => {
  const pipe = slowPipe(t)
  const dest = new LogDestination({ fd: pipe.writer, minLength: 4096, periodicFlush: 0, maxPendingBytes: 32 * 1024 })
  const reports: number[] = []
  dest.onDropsEnded = (n) => { reports.push(n) }
  const written: string[] = []
  for (let i = 0; i < 400; i++) { // 400 KiB into 64 KiB of pipe and 32 KiB of buffer
    written.push(sized(i, 1024))
    dest.write(written[i]!)
  }
  t.ok(dest.dropped > 250 && dest.dropped < 350, `about 300 of 400 lines dropped (${dest.dropped})`)
  t.same(reports, [], 'not reported while nothing gets through')
  pipe.read()
  const after: string[] = []
  for (let i = 400; i < 420; i++) {
    after.push(sized(i, 1024))
    dest.write(after.at(-1)!)
  }
  dest.flushSync()
  const lines = pipe.read().toString('utf8').split('\n').slice(0, -1)
  const numbers = lines.map((line) => (JSON.parse(line) as { i: number }).i)
  t.equal(lines.length + dest.dropped, 420, 'every line either arrived whole (each one parses) or was counted as dropped')
  t.same(numbers, [...numbers].sort((a, b) => a - b), 'in order')
  t.same(numbers.slice(-20), Array.from({ length: 20 }, (_, k) => 400 + k), 'the lines after the reader caught up all arrived')
  t.equal(numbers.filter((n) => n < 400).length, 400 - dest.dropped, 'the earlier lines that were kept arrived')
  await sleep(10)
  t.same(reports, [dest.dropped], 'the drops were reported once, with their number')
  dest.end()
})

t.test('a flush at stop waits for a reader that is behind, in another process', async (t) => {
  const fifo = join(t.testdir(), 'stdout')
  const out = join(t.testdir(), 'collected')
  execFileSync('mkfifo', [fifo])
  const keep = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK) // a reader until `cat` opens it
  const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)
  // the collector starts reading 300 ms from now
  const collector = spawn('sh', ['-c', `sleep 0.3; exec cat "${fifo}" > "${out}"`], { stdio: 'ignore' })
  const exited = new Promise((resolve) => collector.once('exit', resolve))
  const dest = new LogDestination({ fd: writer, minLength: 4096, periodicFlush: 0 })
  const expected: string[] = []
  while (Buffer.byteLength(expected.join('')) < 3 * 65_536) {
    expected.push(sized(expected.length, 500))
    dest.write(expected.at(-1)!)
  }
  dest.flushSync() // blocks until `cat` has taken it all
  dest.end()
  closeSync(keep)
  await exited
  t.equal(readFileSync(out, 'utf8'), expected.join(''), 'every line reached the collector')
  t.equal(dest.dropped, 0)
})

t.test('a flush at stop gives up on a reader that never reads, after stopWaitMs', async (t) => {
  const pipe = slowPipe(t)
  const dest = new LogDestination({ fd: pipe.writer, minLength: 4096, periodicFlush: 0, stopWaitMs: 300 })
  const expected: string[] = []
  while (Buffer.byteLength(expected.join('')) < 2 * 65_536) {
    expected.push(sized(expected.length, 500))
    dest.write(expected.at(-1)!)
  }
  dest.flushSync()
  t.pass('flushSync returned without throwing')
  const got = pipe.read().toString('utf8')
  t.ok(got.length >= 4096 && expected.join('').startsWith(got), 'what did get out is a prefix of the lines')
  dest.end()
})

t.test('after a flush the lines are batched to minLength again', async (t) => {
  const pipe = slowPipe(t)
  const dest = new LogDestination({ fd: pipe.writer, minLength: 4096, periodicFlush: 0, maxPendingBytes: 32 * 1024 })
  for (let i = 0; i < 300; i++) dest.write(sized(i, 300)) // past the pipe and the bound
  pipe.read()
  dest.flushSync()
  const flushed = pipe.read().length
  // sonic-boom writes through the fs module's writeSync
  const writeSync = fs.writeSync
  let calls = 0
  fs.writeSync = ((...args: Parameters<typeof writeSync>) => { calls++; return writeSync(...args) }) as typeof writeSync
  try {
    for (let i = 0; i < 10; i++) dest.write(sized(1000 + i, 300))
  } finally {
    fs.writeSync = writeSync
  }
  t.equal(calls, 0, 'ten short lines after the flush: no write(2) until minLength')
  t.equal(pipe.read().length, flushed, 'they wait, as before')
  dest.end()
})
