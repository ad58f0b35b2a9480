// The official conformance suite's authorization-server scenarios against a started gateway:
// `authorization-server-metadata-endpoint` (RFC 8414 metadata: issuer, endpoints, code + S256,
// client_id_metadata_document_supported) and `authorization-code-grant` (a full login: the
// suite prints the authorization URL, this test is the browser, the suite redeems the code).
// Authorization-server scenarios arrived after conformance 0.1.16; the CLI is taken from, in
// order: $PORTCULLIS_CONFORMANCE_CLI (a path to its dist/index.js), the devDependency alias
// @modelcontextprotocol/conformance-next, then @modelcontextprotocol/conformance itself.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Browser, signIn } from '../helpers/browser.ts'
import { startFederatedStack } from '../helpers/federated.ts'
import { addressInUse, withFreePorts } from '../helpers/ports.ts'

const require = createRequire(import.meta.url)
const SCENARIO = 'authorization-server-metadata-endpoint'

interface Run { readonly code: number | null, readonly output: string }

function run (cli: string, args: string[], onOutput: (text: string) => void = () => {}, timeoutMs = 60_000): Promise<Run> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const take = (chunk: Buffer): void => { output += chunk.toString(); onOutput(output) }
  child.stdout.on('data', take)
  child.stderr.on('data', take)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return new Promise((resolve) => child.once('close', (code) => { clearTimeout(timer); resolve({ code, output }) }))
}

function candidates (): string[] {
  const found: string[] = []
  if (process.env.PORTCULLIS_CONFORMANCE_CLI !== undefined) found.push(process.env.PORTCULLIS_CONFORMANCE_CLI)
  for (const name of ['@modelcontextprotocol/conformance-next', '@modelcontextprotocol/conformance']) {
    try {
      const pkg = require.resolve(`${name}/package.json`)
      const bin = (require(pkg) as { bin: Record<string, string> | string }).bin
      found.push(join(dirname(pkg), typeof bin === 'string' ? bin : bin.conformance ?? ''))
    } catch { /* not installed */ }
  }
  return found.filter((path) => existsSync(path))
}

async function findCli (): Promise<string | undefined> {
  for (const cli of candidates()) {
    if ((await run(cli, ['list'])).output.includes(SCENARIO)) return cli
  }
  return undefined
}

async function checksOf (outDir: string, scenario: string): Promise<Array<{ id: string, status: string, errorMessage?: string }>> {
  const dir = (await readdir(outDir)).find((d) => d.startsWith(`authorization-server-${scenario}-`))
  if (dir === undefined) throw new Error(`no results for ${scenario} in ${outDir}`)
  return JSON.parse(await readFile(join(outDir, dir, 'checks.json'), 'utf8')) as Array<{ id: string, status: string }>
}

const cli = await findCli()
if (cli === undefined) {
  t.fail('no installed conformance CLI has the authorization-server scenarios (0.1.16 has none): add the devDependency ' +
    '"@modelcontextprotocol/conformance-next": "npm:@modelcontextprotocol/conformance@0.2.0-alpha.12", or set PORTCULLIS_CONFORMANCE_CLI')
} else {
  const stack = await startFederatedStack()
  t.teardown(() => stack.close())

  t.test(`${SCENARIO} passes`, async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'portcullis-as-conformance-'))
    const result = await run(cli, ['authorization', '--url', stack.issuer, '--scenario', SCENARIO, '-o', out])
    if (result.code !== 0) t.comment(result.output.slice(-2000))
    t.equal(result.code, 0, 'the CLI exits 0')
    const checks = await checksOf(out, SCENARIO)
    t.same(checks.map((c) => [c.id, c.status]), [['authorization-server-metadata', 'SUCCESS'], ['authorization-server-metadata-cimd', 'SUCCESS']])
  })

  const authorizationCodeGrant = async (port: number): Promise<{ result: Run, out: string }> => {
    const registered = await fetch(`${stack.issuer}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [`http://127.0.0.1:${port}/callback`], token_endpoint_auth_method: 'none', client_name: 'conformance' }),
    })
    const { client_id: clientId } = await registered.json() as { client_id: string }
    const out = await mkdtemp(join(tmpdir(), 'portcullis-as-conformance-'))
    let browsing: Promise<void> | undefined
    const result = await run(cli, ['authorization', '--url', stack.issuer, '--client-id', clientId, '--resource', stack.resource, '-p', String(port), '-o', out], (text) => {
      const url = /(http:\/\/127\.0\.0\.1:\d+\/oauth\/authorize\?\S+)/.exec(text)?.[1]
      if (url === undefined || browsing !== undefined) return
      browsing = (async () => {
        const back = await signIn(new Browser(), url, 'alice', (u) => u.startsWith(`http://127.0.0.1:${port}/callback`))
        await (await fetch(back)).arrayBuffer() // the suite's callback server receives the code
      })()
    })
    const browsed = await browsing?.then(() => undefined, (err: unknown) => err)
    if (result.code !== 0 && addressInUse(result.output)) throw new Error(`the callback server could not listen on ${port}:\n${result.output.slice(-2000)}`)
    if (browsed !== undefined) throw browsed
    return { result, out }
  }

  t.test('authorization-code-grant passes, with this test as the browser', async (t) => {
    // The CLI's callback server listens on the port we registered: on one taken meanwhile, register and run again.
    const { result, out } = await withFreePorts(1, async (port) => await authorizationCodeGrant(port))
    if (result.code !== 0) t.comment(result.output.slice(-2000))
    t.equal(result.code, 0, 'the CLI exits 0')
    t.same((await checksOf(out, 'authorization-code-grant')).map((c) => [c.id, c.status]), [['authorization-code-grant', 'SUCCESS']])
  })
}
