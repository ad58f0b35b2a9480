/**
 * The configuration `portcullis dev-idp` runs without `--config` (also examples/dev-idp.yaml):
 * two demo users, one client, and a policy for the demo gateway's `everything` server.
 * The passwords are public on purpose; `portcullis token` uses them when --password is absent.
 */
export const DEMO_PASSWORDS: Readonly<Record<string, string>> = Object.freeze({ alice: 'alice-demo', bob: 'bob-demo' })
export const DEMO_CLIENT = Object.freeze({ clientId: 'demo-client', secret: 'demo-secret' })

export const DEFAULT_DEV_IDP_YAML = `# portcullis dev-idp: a local OpenID Provider for trying Enterprise-Managed Authorization.
issuer: http://127.0.0.1:8081
listen: { host: 127.0.0.1, port: 8081 }
signing: { alg: ES256 }          # a fresh key at every start; signing.keysFile: keys.json keeps one
idTokenTtlSeconds: 600
idJagTtlSeconds: 300

users:
  - username: alice
    password: ${DEMO_PASSWORDS['alice']}
    email: alice@example.com
    name: Alice Example
    groups: [eng]
  - username: bob
    password: ${DEMO_PASSWORDS['bob']}
    email: bob@example.com
    name: Bob Example
    groups: [sales]

clients:
  - clientId: ${DEMO_CLIENT.clientId}
    secret: ${DEMO_CLIENT.secret}
    # idJagClientId: the client_id this client has at the resource AS (default: clientId)

# Which (audience, resource) pairs may be reached, by whom, with which scopes.
# audience: the resource authorization server's issuer (the gateway); resources: RFC 9728 resource ids.
policy:
  - audience: http://127.0.0.1:8080
    resources: [http://127.0.0.1:8080/mcp/everything]
    groups: [eng]
    scopes: [tools.read, tools.write]
  - audience: http://127.0.0.1:8080
    resources: [http://127.0.0.1:8080/mcp/everything]
    groups: [sales]
    scopes: [tools.read]
`
