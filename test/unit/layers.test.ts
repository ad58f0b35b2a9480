// The layering rule of `npm run lint` (.dependency-cruiser.cjs) and the README's table of layers
// say the same thing, and the rule really fails on what it forbids: an upward import, a cycle of
// type-only imports, a module outside every layer. Each is tried on a throwaway copy of the rule.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')
const require = createRequire(import.meta.url)
const config = require(join(root, '.dependency-cruiser.cjs')) as { forbidden: Array<{ name: string, from: { path?: string } }> }
const depcruise = join(root, 'node_modules/.bin/depcruise')

/** LAYERS as the config spells them: name → path pattern */
const layers = config.forbidden.filter((r) => r.name.endsWith('-imports-nothing-above'))
  .map((r) => [r.name.replace('-imports-nothing-above', ''), r.from.path ?? ''] as const)

t.test("the README's table names every layer in the order of the rule, with modules the rule places there", async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const rows = [...readme.matchAll(/^\| (outside|assembly|http|forwarding|judging|leaves) \| (.+?) \|/gm)]
    .map((m) => ({ layer: m[1] as string, modules: [...(m[2] as string).matchAll(/`([^`]+)`/g)].map((x) => x[1] as string) }))
  t.same(rows.map((r) => r.layer), ['outside', 'assembly', 'http', 'forwarding', 'judging', 'leaves'], 'top to bottom')
  t.same(layers.map(([name]) => name), ['leaves', 'judging', 'forwarding', 'http', 'assembly'], 'the rule, bottom up (outside imports anything)')
  for (const { layer, modules } of rows) {
    for (const m of modules) {
      const file = `src/${m.endsWith('/') ? `${m}x.ts` : m}`
      const home = layers.find(([, p]) => new RegExp(p).test(file))?.[0] ?? 'outside'
      t.equal(home, layer, `${m} is in ${layer}`)
    }
  }
})

/** a scratch project with the real rule and the given files; depcruise's exit code and output */
function cruise (files: Record<string, string>): { code: number, out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-layers-'))
  try {
    cpSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'))
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', allowImportingTsExtensions: true, noEmit: true, strict: true } }))
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true })
      writeFileSync(join(dir, path), text)
    }
    try {
      return { code: 0, out: execFileSync(process.execPath, [depcruise, 'src', '--config', '.dependency-cruiser.cjs'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' }) }
    } catch (err) {
      const e = err as { status: number, stdout: string, stderr: string }
      return { code: e.status, out: e.stdout + e.stderr }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const cases: Array<{ name: string, files: Record<string, string>, rule?: string }> = [
  {
    name: 'imports that follow the layers pass',
    files: {
      'src/upstream/u.ts': "import type { E } from '../mcp/e.ts'\nexport type U = E\n",
      'src/mcp/e.ts': "import type { C } from '../config/c.ts'\nexport type E = C\n",
      'src/config/c.ts': 'export type C = string\n',
    },
  },
  {
    name: 'an upward import (judging → forwarding) fails',
    files: { 'src/telemetry/t.ts': "import { u } from '../upstream/u.ts'\nexport const t = u\n", 'src/upstream/u.ts': 'export const u = 1\n' },
    rule: 'judging-imports-nothing-above',
  },
  {
    name: 'a leaf that imports the gateway fails',
    files: { 'src/jsonrpc/j.ts': "import type { P } from '../policy/p.ts'\nexport type J = P\n", 'src/policy/p.ts': 'export type P = 1\n' },
    rule: 'leaves-imports-nothing-above',
  },
  {
    name: 'a cycle of type-only imports fails, within one layer too',
    files: {
      'src/mcp/exchange.ts': "import type { R } from '../policy/r.ts'\nexport interface X { r?: R }\n",
      'src/policy/r.ts': "import type { X } from '../mcp/exchange.ts'\nexport interface R { x?: X }\n",
    },
    rule: 'no-circular',
  },
  {
    name: 'the exchange importing telemetry fails',
    files: { 'src/mcp/e.ts': "import type { T } from '../telemetry/t.ts'\nexport type E = T\n", 'src/telemetry/t.ts': 'export type T = 1\n' },
    rule: 'the-exchange-is-types',
  },
  {
    name: 'a module in no layer fails',
    files: { 'src/newfolder/n.ts': "import { v } from '../version.ts'\nexport const n = v\n", 'src/version.ts': 'export const v = 1\n' },
    rule: 'every-module-has-a-layer',
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const { code, out } = cruise(c.files)
    if (c.rule === undefined) {
      t.equal(code, 0, out)
    } else {
      t.not(code, 0, 'depcruise fails')
      t.match(out, c.rule, `names the rule ${c.rule}`)
    }
  })
}
