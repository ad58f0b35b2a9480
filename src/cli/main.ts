import { HELP, wantsHelp } from './help.ts'
import type { CliIo } from './io.ts'

const USAGE = `usage: portcullis <command> [options]

  start   [--config portcullis.yaml]        run the gateway (also: PORTCULLIS_CONFIG)
  check   [--config portcullis.yaml]        validate a config; print every problem with its path
  keys generate [--alg ES256]               print a new private JWKS for signing access tokens
  keys rotate --file keys.json              next→current→retired, adding a new next key
  dev-idp [--config idp.yaml]               a local enterprise IdP for trying EMA
  token   --idp URL --user U --server URL   walk the client side of EMA and print an access token
  policy explain --config F --server S --tool T [--scope "a b"] [--claims JSON]
                                            which rule allows or denies, and why (exit 0 allow, 1 deny)
  demo                                      dev IdP + a real MCP server + the gateway, on localhost
  call    URL TOOL [JSON] [--token T]       call one tool through an MCP endpoint and print the result

portcullis <command> --help prints a command's options and exit codes.
`

/** Dispatch a subcommand; returns the exit code. */
export async function main (argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const [command, ...rest] = argv
  const help = command !== undefined && Object.hasOwn(HELP, command) ? HELP[command] : undefined
  if (help !== undefined && wantsHelp(rest)) {
    io.stdout.write(help)
    return 0
  }
  switch (command) {
    // Each command loads only what it uses: `start` never loads the SDK client, the dev IdP or the demo.
    case 'start': return await (await import('./start.ts')).runStart(rest, io)
    case 'check': return await (await import('./check.ts')).runCheck(rest, io)
    case 'demo': return await (await import('./demo.ts')).runDemo(rest, io)
    case 'call': return await (await import('./call.ts')).runCall(rest, io)
    case 'keys': return await (await import('./keys.ts')).runKeys(rest, io)
    case 'dev-idp': return await (await import('./dev-idp.ts')).runDevIdp(rest, io)
    case 'token': return await (await import('./token.ts')).runToken(rest, io)
    case 'policy': return await (await import('./policy.ts')).runPolicy(rest, io)
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      io.stdout.write(USAGE)
      return command === undefined ? 2 : 0
    default:
      io.stderr.write(`portcullis: unknown command ${JSON.stringify(command)}\n${USAGE}`)
      return 2
  }
}
