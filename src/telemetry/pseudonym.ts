import { createHmac, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

/**
 * The audit log's `enduser.pseudo.id`: HMAC-SHA256 of issuer and subject, so a user's calls can
 * be followed through the log without the log naming the user. The key comes from
 * PORTCULLIS_AUDIT_PSEUDONYM_KEY (shared by all replicas, so one user has one pseudonym
 * everywhere); without it a random per-process key is used and the caller is told to warn.
 */
export function createPseudonymizer (env: Record<string, string | undefined>): { pseudonym: (issuer: string, subject: string) => string; ephemeral: boolean } {
  const configured = env.PORTCULLIS_AUDIT_PSEUDONYM_KEY
  const key = configured !== undefined && configured.length >= 32 ? configured : randomBytes(32)
  const cache = new LRUCache<string, string>({ max: 10_000 })
  return {
    ephemeral: key !== configured,
    pseudonym (issuer, subject) {
      const input = `${issuer}\n${subject}`
      let value = cache.get(input)
      if (value === undefined) {
        value = createHmac('sha256', key).update(input).digest('base64url').slice(0, 22)
        cache.set(input, value)
      }
      return value
    },
  }
}
