/**
 * `portcullis <command> --help` for the commands whose parsers do not answer it themselves:
 * usage, options and exit codes. (check, dev-idp and token print their own.)
 */
export const HELP: Readonly<Record<string, string>> = {
  start: `usage: portcullis start [--config FILE]

Runs the gateway: validates the whole configuration first, then listens on listen.* (clients)
and admin.* (metrics, health, readiness). SIGHUP reloads the same file; SIGTERM or SIGINT
drains (listen.drainTimeoutMs) and stops.

options:
  -c, --config FILE   the configuration (default: $PORTCULLIS_CONFIG, else ./portcullis.yaml)
  -h, --help          this text

environment: PORTCULLIS_SESSION_KEY and PORTCULLIS_AUDIT_PSEUDONYM_KEY (the same on every
replica, at least 32 characters), PORTCULLIS_LOG_LEVEL, OTEL_* (traces), and every \${NAME}
the configuration refers to.
Exit status: 0 stopped cleanly, 1 invalid configuration, 2 usage error.
`,
  keys: `usage: portcullis keys generate [--alg ALG]
       portcullis keys rotate --file FILE [--alg ALG]

generate  prints a new private JWKS for authorization.signingKeys: a current and a next key
rotate    rewrites FILE in place: next → current, current → retired, a new next key; keys
          retired by the previous rotation are dropped

options:
  --alg ALG     ES256 (default), ES384, RS256, PS256 or EdDSA
  --file FILE   the keys file to rotate (written with mode 0600)
  -h, --help    this text
Exit status: 0 ok, 1 the keys could not be made or the file is invalid, 2 usage error.
`,
  policy: `usage: portcullis policy explain --config FILE --server S --tool NAME [options]

Runs the gateway's own policy decision for one identity and one tool (or prompt, or resource)
and prints the decision, the rule id the audit log records, and the reason.

options:
  -c, --config FILE        the gateway configuration
  --server S               a server name from the configuration
  --tool NAME              the tool (or prompt name, or resource URI with --kind)
  --kind KIND              tools (default), prompts or resources
  --scope "a b"            the scopes the access token would hold (default: none)
  --claims JSON            identity claims, e.g. '{"groups":["eng"],"sub":"alice"}' (default {})
  -h, --help               this text
Exit status: 0 allowed, 1 denied (or allowed only with more scopes), 2 usage or configuration error.
`,
  demo: `usage: portcullis demo

Starts the dev IdP (:8081), server-everything (:8082) and the gateway (:8080, admin :9464) on
127.0.0.1, makes an authorized tool call and a refused one, and prints how to do the same
yourself. Ctrl-C stops everything.

environment: PORTCULLIS_DEMO_PORT, PORTCULLIS_DEMO_ADMIN_PORT, PORTCULLIS_DEMO_IDP_PORT,
PORTCULLIS_DEMO_UPSTREAM_PORT (the ports above), PORTCULLIS_LOG_LEVEL (default warn).
Exit status: 0 stopped, 1 could not start (a port in use, say).
`,
  call: `usage: portcullis call URL TOOL [JSON] [--token TOKEN]

Connects to the MCP endpoint URL with the official SDK client, calls TOOL with the JSON object
of arguments (default {}), and prints the result.

options:
  --token TOKEN   a bearer access token (default: $PORTCULLIS_TOKEN; none: the call is unauthenticated)
  -h, --help      this text
Exit status: 0 the tool answered, 1 the call failed or the tool returned an error, 2 usage error.
`,
}

/** Whether argv asks for help (before any `--`, after which everything is positional). */
export function wantsHelp (argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')
}
