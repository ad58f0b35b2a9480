// The layers of src/, checked in `npm run lint` (type-only imports count: tsPreCompilationDeps).
// From the bottom: config, jsonrpc, store, errors.ts, version.ts import nothing else of ours;
// mcp/ (the exchange's types) sits on them; authn, policy, session, telemetry, limits, ratelimit
// judge and observe; upstream/ forwards; listener/ and authorization-server/ serve HTTP;
// pipeline.ts, state.ts and gateway.ts assemble; cli/, admin/ and dev-idp/ are the outside.
const LEAF = '^src/(config|jsonrpc|store)/|^src/(errors|version)[.]ts$'
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a cycle hides the layers (type-only imports count)',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'leaves-stay-leaves',
      comment: 'config, jsonrpc, store, errors and version import nothing else of the gateway',
      severity: 'error',
      from: { path: LEAF },
      to: { path: '^src/', pathNot: LEAF },
    },
    {
      name: 'exchange-is-a-leaf-type',
      comment: 'what a request carries (mcp/) knows nothing of who forwards, serves or observes it',
      severity: 'error',
      from: { path: '^src/mcp/' },
      to: { path: '^src/(upstream|listener|telemetry|authorization-server|admin|cli|ratelimit|limits)/|^src/(state|pipeline|gateway)[.]ts$' },
    },
    {
      name: 'upstream-below-listener',
      comment: 'upstreams are handed an exchange; they never reach back into the listener or the assembly',
      severity: 'error',
      from: { path: '^src/upstream/' },
      to: { path: '^src/(listener|authorization-server|admin|cli|dev-idp|ratelimit)/|^src/(state|pipeline|gateway|reload)[.]ts$' },
    },
    {
      name: 'judges-below-transport',
      comment: 'authentication, policy, sessions and telemetry do not know how requests arrive or leave',
      severity: 'error',
      from: { path: '^src/(authn|policy|session|telemetry|limits)/' },
      to: { path: '^src/(upstream|listener|admin|cli|dev-idp)/|^src/(state|pipeline|gateway|reload)[.]ts$' },
    },
    {
      name: 'outside-is-outside',
      comment: 'nothing in the gateway imports the CLI, the console or the dev IdP',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|admin|dev-idp)/|^src/gateway[.]ts$' },
      to: { path: '^src/(cli|admin|dev-idp)/' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
}
