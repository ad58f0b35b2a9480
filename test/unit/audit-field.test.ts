import t from 'tap'
import { MAX_AUDIT_FIELD_CHARS, auditText, capAuditFields } from '../../src/telemetry/audit-field.ts'

t.test('every string field of an audit line is capped, with a marker', t => {
  const line = capAuditFields({ short: 'abc', n: 1.5, long: 'x'.repeat(900_000), exact: 'y'.repeat(MAX_AUDIT_FIELD_CHARS) })
  t.equal(line.short, 'abc')
  t.equal(line.n, 1.5)
  t.equal(line.exact, 'y'.repeat(MAX_AUDIT_FIELD_CHARS), 'at the cap: whole')
  t.equal((line.long as string).length, MAX_AUDIT_FIELD_CHARS)
  t.ok((line.long as string).endsWith('…[truncated]'))
  const emoji = auditText('\u{1F600}'.repeat(MAX_AUDIT_FIELD_CHARS))
  t.ok(emoji.length <= MAX_AUDIT_FIELD_CHARS && emoji.endsWith('…[truncated]'))
  t.notOk(/[\ud800-\udbff](?![\udc00-\udfff])/.test(emoji), 'no lone surrogate')
  t.end()
})
