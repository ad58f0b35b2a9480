// The layers of src/, checked by `npm run lint` (type-only imports count: tsPreCompilationDeps).
// A module imports from its own layer or the layers below it, never above; and nothing forms a
// cycle, within a layer either. README "How a request travels" draws the same table.
const LAYERS = [
  ['leaves', '^src/(config|jsonrpc|store)/|^src/(errors|version)[.]ts$'],
  ['judging', '^src/(mcp|authn|policy|session|ratelimit|limits|telemetry)/'],
  ['forwarding', '^src/upstream/'],
  ['http', '^src/(listener|authorization-server|admin)/|^src/(pipeline|state)[.]ts$'],
  ['assembly', '^src/(gateway|reload)[.]ts$'],
  ['outside', '^src/(cli|dev-idp)/'],
]

const upward = LAYERS.slice(0, -1).map(([name, path], i) => ({
  name: `${name}-imports-nothing-above`,
  comment: `${name} may import ${LAYERS.slice(0, i + 1).map(([n]) => n).join(', ')} only`,
  severity: 'error',
  from: { path },
  to: { path: LAYERS.slice(i + 1).map(([, p]) => p).join('|') },
}))

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
      name: 'every-module-has-a-layer',
      comment: 'a new folder goes into LAYERS (and into the README table)',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map(([, p]) => p).join('|') },
      to: {},
    },
    {
      name: 'the-exchange-is-types',
      comment: 'mcp/ describes what a request carries: it imports types and constants, never who forwards, serves or observes it',
      severity: 'error',
      from: { path: '^src/mcp/' },
      to: { path: '^src/(upstream|listener|telemetry|ratelimit|limits)/' },
    },
    ...upward,
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
}
