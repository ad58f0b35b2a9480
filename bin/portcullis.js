#!/usr/bin/env node
// Portcullis runs its TypeScript sources directly: Node >= 22.18 strips types natively.
// An older `node` on PATH re-executes this script with the project's own node@24
// (a devDependency), so `node bin/portcullis.js …` works from any checkout after `npm ci`.
// The wrapper forwards signals (SIGHUP reloads, SIGTERM drains) and exits with the child's code.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

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
  const { main } = await import('../src/cli/main.ts')
  process.exitCode = await main(process.argv.slice(2))
}
