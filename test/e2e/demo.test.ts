// `npm start` is `portcullis demo`: the dev IdP, server-everything and the gateway with a
// read-only-first policy, and — before it waits for Ctrl-C — what it did on the spot: a call
// without a token refused, alice's and bob's EMA flows, the tools/list each gets, alice's allowed
// call and her denied one, and the console that now shows the denial. Started as a user starts
// it, on free ports. PORTCULLIS_UPDATE_SCREENSHOTS=1 also takes the README's screenshot of the
// demo's console (docs/console/demo.png).
import t from 'tap'
import { request } from 'undici'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { addressInUse, withFreePorts } from '../helpers/ports.ts'
import { launchChromium } from '../helpers/chromium.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))

interface Demo {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  readonly gateway: number
  /** what it printed so far, stdout and stderr */
  output (): string
  /** SIGKILL to its process group: the demo and the server-everything it started */
  killGroup (): void
}

/**
 * `portcullis demo` until it is up (or has failed). Its gateway and IdP name their own ports in
 * their config, and server-everything takes its port from the environment: all chosen before it
 * starts, so a demo that lost one to another process (EADDRINUSE) is killed and started again.
 */
async function startDemo (gateway: number, idp: number, upstream: number): Promise<Demo> {
  // `env` execs node without the NODE_OPTIONS the test runner injects (its hooks would catch SIGTERM).
  // A process group of its own: a demo that failed half-way must not leave its server-everything behind.
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(root, 'bin/portcullis.js'), 'demo'], {
    cwd: root,
    env: {
      ...process.env,
      PORTCULLIS_DEMO_PORT: String(gateway),
      PORTCULLIS_DEMO_ADMIN_PORT: '0',
      PORTCULLIS_DEMO_IDP_PORT: String(idp),
      PORTCULLIS_DEMO_UPSTREAM_PORT: String(upstream),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const closed = new Promise((resolve) => child.once('close', resolve))
  const killGroup = (): void => {
    try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') } catch { /* all gone */ }
  }
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const deadline = Date.now() + 60_000
  while (!out.includes('Ctrl-C stops everything.') && !addressInUse(out) && Date.now() < deadline && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // all of its output, if it ended
  if (child.exitCode !== null) await closed
  if (!out.includes('Ctrl-C stops everything.') && addressInUse(out)) {
    killGroup()
    await exited
    throw new Error(`portcullis demo could not listen:\n${out}`)
  }
  return { child, exited, gateway, output: () => out, killGroup }
}

t.test('portcullis demo tells the policy\'s story, then stops on SIGTERM', async (t) => {
  const { child, exited, gateway, output, killGroup } = await withFreePorts(3, startDemo)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) killGroup()
    await exited
    killGroup()
  })
  const out = output()
  t.match(out, 'Ctrl-C stops everything.', 'the demo came up')
  const mcpUrl = `http://127.0.0.1:${gateway}/mcp/everything`
  t.match(out, `gateway                    ${mcpUrl}`)
  t.match(out, /without a token: {2}refused — Unauthorized: a bearer token is required/, 'a call without a token is refused (401)')
  t.match(out, 'alice (eng), ID token → ID-JAG → access token (', 'alice\'s EMA flow ran')
  t.match(out, 'bob (sales), ID token → ID-JAG → access token (', 'and bob\'s')

  const listed = (user: string): string[] => /tools\/list as (\w+): \d+ of server-everything's \d+ — (.*)/.exec(out.slice(out.indexOf(`tools/list as ${user}:`)))?.[2]?.split(', ') ?? []
  const alice = listed('alice')
  const bob = listed('bob')
  t.ok(alice.includes('echo') && alice.includes('get-sum') && alice.includes('get-structured-content'), `alice (eng) lists the read tools: ${alice.join(' ')}`)
  t.ok(bob.includes('echo') && bob.length < alice.length, `bob (sales) lists fewer: ${bob.join(' ')}`)
  t.ok(bob.every((name) => alice.includes(name)), 'and nothing alice does not')
  for (const [user, names] of [['alice', alice], ['bob', bob]] as const) {
    t.notOk(names.includes('get-env'), `${user}: get-env is not listed`)
    t.notOk(names.some((n) => /^(trigger|toggle)-/.test(n) || n === 'gzip-file-as-resource'), `${user}: no tool with side effects is listed`)
  }
  t.match(out, /tools\/list as alice: \d+ of server-everything's (\d+)/, 'out of what server-everything lists')

  t.match(out, 'alice, tools/call echo:     "Echo: hello through the gateway"', 'the allowed call went through')
  t.match(out, 'alice, tools/call get-env:  denied — Unknown tool: get-env', 'the denied one is answered as an unknown tool')
  t.notMatch(out, /eyJ[A-Za-z0-9_-]{10,}/, 'no token is printed')

  const adminUrl = /Console: (http:\/\/127\.0\.0\.1:\d+)\/ — these decisions are there now/.exec(out)?.[1]
  t.ok(adminUrl, 'the console URL is printed')
  t.match(out, `console                    ${adminUrl}/`)
  const api = await (await request(`${adminUrl}/api/decisions`)).body.json() as { decisions: Array<Record<string, unknown>> }
  t.match(api.decisions, [{ server: 'everything', kind: 'tool', name: 'get-env', decision: 'deny', ruleId: 'no-env', reason: 'denied_by_rule', clientId: 'demo-client' }], 'the console\'s decisions show the denial with its rule id')
  t.notOk(api.decisions.some((d) => d.name === 'echo'), 'and no denial of the allowed call')
  if (process.env.PORTCULLIS_UPDATE_SCREENSHOTS === '1') {
    const browser = await launchChromium({ viewport: { width: 1280, height: 340 } })
    try {
      const page = browser.context.pages()[0] ?? await browser.context.newPage()
      await page.goto(`${adminUrl}/decisions`)
      await page.screenshot({ path: join(root, 'docs/console/demo.png') })
    } finally {
      await browser.close()
    }
  }

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM stops everything, exit 0')
})
