#!/usr/bin/env node
// Portcullis runs the compiled JavaScript in dist/ (`npm run build`) when it is at least as new as
// every file under src/, and the TypeScript sources directly otherwise (Node >= 22.18 strips
// types natively) — so an edit to src/ is never run stale. Compiled, an idle gateway takes ~40 MB
// less memory: type stripping keeps the sources and their transforms alive.
// An older `node` on PATH re-executes this script with the project's own node@24
// (a devDependency), so `node bin/portcullis.js …` works from any checkout after `npm ci`.
// The wrapper forwards signals (SIGHUP reloads, SIGTERM drains) and exits with the child's code.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** dist/src/cli/main.js when dist is fresh, else undefined */
function compiled () {
  const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url))
  if (process.env.PORTCULLIS_RUN_SOURCES === '1' || !existsSync(main)) return undefined
  const built = statSync(main).mtimeMs
  const src = fileURLToPath(new URL('../src', import.meta.url))
  if (!existsSync(src)) return main // the image ships dist/ alone
  const stale = readdirSync(src, { recursive: true, withFileTypes: true })
    .some((entry) => entry.isFile() && statSync(`${entry.parentPath}/${entry.name}`).mtimeMs > built)
  return stale ? undefined : main
}

// An older node (no type stripping: before 22.18) cannot run the sources nor the dependencies
// either way: re-execute with the project's own node@24, which then picks dist/ or src/.
if (!process.features.typescript) {
  const local = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url))
  if (!existsSync(local)) {
    console.error(`portcullis needs Node.js >= 22.19 (this is ${process.version}); run \`npm install\` or install Node 24`)
    process.exit(2)
  }
  const child = spawn(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
} else {
  const cli = await import(compiled() ?? '../src/cli/main.ts')
  process.exitCode = await cli.main(process.argv.slice(2))
}
