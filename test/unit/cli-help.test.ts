// Every subcommand answers --help (and -h) with its usage, its options and its exit codes,
// exit 0, on stdout, and does nothing else (no gateway started, no file written).
import t from 'tap'
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main.ts'

async function run (argv: string[]): Promise<{ code: number, out: string, err: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c: Buffer) => { out += c.toString() })
  stderr.on('data', (c: Buffer) => { err += c.toString() })
  const code = await main(argv, { stdout, stderr, env: {} })
  return { code, out, err }
}

const COMMANDS: Array<[string[], string]> = [
  [['start'], 'portcullis start'],
  [['check'], 'portcullis check'],
  [['keys'], 'portcullis keys'],
  [['keys', 'generate'], 'portcullis keys generate'],
  [['keys', 'rotate'], 'portcullis keys rotate'],
  [['dev-idp'], 'portcullis dev-idp'],
  [['token'], 'portcullis token'],
  [['policy'], 'portcullis policy explain'],
  [['policy', 'explain'], 'portcullis policy explain'],
  [['policy', 'explain', '--config', 'nope.yaml', '--server', 's'], 'portcullis policy explain'],
  [['demo'], 'portcullis demo'],
  [['call'], 'portcullis call'],
  [['call', 'http://127.0.0.1:1/mcp', 'echo'], 'portcullis call'],
]

for (const [argv, usage] of COMMANDS) {
  for (const flag of ['--help', '-h']) {
    t.test(`${argv.join(' ')} ${flag}`, async (t) => {
      const { code, out, err } = await run([...argv, flag])
      t.equal(code, 0, 'exit 0')
      t.match(out, /^usage: portcullis /, 'a usage text')
      t.match(out, usage, 'for this command')
      t.match(out, /Exit status: 0 /, 'the exit codes')
      t.equal(err, '', 'nothing on stderr')
    })
  }
}

t.test('a --help after -- is an argument, not a request for help', async (t) => {
  const { code, err } = await run(['call', '--', '--help'])
  t.equal(code, 2)
  t.match(err, 'portcullis call')
})

t.test('an unknown command and the bare command', async (t) => {
  t.equal((await run(['constructor', '--help'])).code, 2, 'no help for names that are not commands')
  const bare = await run([])
  t.equal(bare.code, 2)
  t.match(bare.out, '--help prints a command')
  t.equal((await run(['help'])).code, 0)
})
