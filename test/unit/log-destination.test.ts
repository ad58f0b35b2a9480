import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { LogDestination } from '../../src/telemetry/log-destination.ts'

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
