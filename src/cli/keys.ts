import { readFile, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { SIGNING_ALGORITHMS, generatePrivateJwk, importKeySet, type SigningAlgorithm } from '../authorization-server/keys.ts'
import type { CliIo } from './io.ts'

/**
 * `portcullis keys generate [--alg ES256]`: print a new private JWKS (a current and a next key).
 * `portcullis keys rotate --file keys.json`: next→current, current→retired, a new next key; keys
 * retired by the previous rotation are dropped (their tokens expired long ago).
 */
export async function runKeys (argv: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv
  try {
    const { values } = parseArgs({ args: rest, options: { alg: { type: 'string', default: 'ES256' }, file: { type: 'string' } }, strict: true })
    const alg = values.alg as SigningAlgorithm
    if (!SIGNING_ALGORITHMS.includes(alg)) throw new Error(`--alg must be one of ${SIGNING_ALGORITHMS.join(', ')}`)
    if (action === 'generate') {
      const keys = [await generatePrivateJwk(alg, 'current'), await generatePrivateJwk(alg, 'next')]
      io.stdout.write(`${JSON.stringify({ keys }, null, 2)}\n`)
      return 0
    }
    if (action === 'rotate') {
      if (values.file === undefined) throw new Error('rotate needs --file')
      const parsed = JSON.parse(await readFile(values.file, 'utf8')) as { keys: Array<Record<string, unknown>> }
      await importKeySet(parsed, values.file)
      const next = parsed.keys.find((k) => k.status === 'next')
      const keys: Array<Record<string, unknown>> = parsed.keys
        .filter((k) => k.status !== 'retired')
        .map((k) => ({ ...k, status: k.status === 'current' ? 'retired' : 'current' }))
      if (next === undefined) keys.push(await generatePrivateJwk(alg, 'current'))
      keys.push(await generatePrivateJwk(alg, 'next'))
      await importKeySet({ keys }, values.file)
      await writeFile(values.file, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 })
      io.stdout.write(`rotated ${values.file}: ${keys.map((k) => `${String(k.kid)}=${String(k.status)}`).join(' ')}\n`)
      return 0
    }
    throw new Error('expected: keys generate [--alg ES256] | keys rotate --file keys.json')
  } catch (err) {
    io.stderr.write(`portcullis keys: ${(err as Error).message}\n`)
    return action === 'generate' || action === 'rotate' ? 1 : 2
  }
}
