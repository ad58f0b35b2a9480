// neostandard (the `standard` style, for TypeScript and ESM), with three deliberate departures.
import neostandard from 'neostandard'
import globals from 'globals'

export default [
  { ignores: ['dist/**', 'coverage/**', '.tap/**'] },
  ...neostandard({ ts: true }),
  {
    rules: {
      // `void promise` marks a promise deliberately not awaited (as fastify's docs write `void app.register()`)
      'no-void': ['error', { allowAsStatement: true }],
      // the config language substitutes `${VAR}`: its tests and messages quote it literally
      'no-template-curly-in-string': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `for (const _ of s)` counts without naming what it counts
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true, vars: 'all', varsIgnorePattern: '^_$' }],
    },
  },
  {
    files: ['test/**'],
    rules: {
      // test loops poll state that other async tasks change between awaits
      'no-unmodified-loop-condition': 'off',
    },
  },
  { files: ['src/admin/console/assets/**'], languageOptions: { globals: globals.browser } },
]
