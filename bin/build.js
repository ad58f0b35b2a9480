#!/usr/bin/env node
// `npm run build`: compile src/ to dist/src/ (tsc, imports rewritten from .ts to .js) and copy the
// files that are not TypeScript (the console's assets) beside them, and package.json. bin/portcullis.js runs dist/
// when it is at least as new as every file under src/, and the TypeScript sources otherwise.
import { execFileSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true })
execFileSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript7/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
cpSync(new URL('../src', import.meta.url), new URL('../dist/src', import.meta.url), { recursive: true, filter: (path) => !path.endsWith('.ts') })
// dist/src/version.js reads ../package.json, as src/version.ts does; it also makes dist/ ESM
cpSync(new URL('../package.json', import.meta.url), new URL('../dist/package.json', import.meta.url))
