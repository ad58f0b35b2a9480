import { parseArgs } from 'node:util'
import type { CliIo } from './io.ts'

/**
 * The `[--config FILE] [--help]` arguments that `check` and `dev-idp` take. Returns the file
 * (undefined when absent), or the exit code when the command is already answered: 0 after
 * `--help`, 2 after a usage error (printed with the usage).
 */
export function configFlag (command: string, argv: string[], io: CliIo, usage: string): { file: string | undefined } | { exit: number } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    })
    if (values.help === true) {
      io.stdout.write(usage)
      return { exit: 0 }
    }
    return { file: values.config }
  } catch (error) {
    io.stderr.write(`portcullis ${command}: ${error instanceof Error ? error.message : String(error)}\n${usage}`)
    return { exit: 2 }
  }
}
