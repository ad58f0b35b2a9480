import { hkdfSync, randomBytes } from 'node:crypto'

/** What replicas must share to serve each other's sessions: the sealing key and the peer key. */
export interface SessionKeys {
  /** AES-256-GCM keys for session ids: the first seals, every one opens (key rotation) */
  readonly sealing: readonly Buffer[]
  /** HMAC-SHA256 keys for replica-to-replica requests: the first signs, every one verifies */
  readonly peer: readonly Buffer[]
  /** no PORTCULLIS_SESSION_KEY: a random key that only this process knows */
  readonly ephemeral: boolean
}

const MIN_KEY_CHARS = 32

/**
 * The keys from `PORTCULLIS_SESSION_KEY` (and, while rotating, `PORTCULLIS_SESSION_KEY_PREVIOUS`),
 * each at least 32 characters; two independent 32-byte keys are derived from it with HKDF, one for
 * sealing session ids and one for authenticating replicas to each other. Without it (or with one
 * too short) the keys are random: one instance works, replicas cannot read each other's sessions.
 */
export function sessionKeysFromEnv (env: Record<string, string | undefined>): SessionKeys {
  const secrets = [env.PORTCULLIS_SESSION_KEY, env.PORTCULLIS_SESSION_KEY_PREVIOUS]
    .filter((s): s is string => s !== undefined && s.length >= MIN_KEY_CHARS)
  const ephemeral = env.PORTCULLIS_SESSION_KEY === undefined || env.PORTCULLIS_SESSION_KEY.length < MIN_KEY_CHARS
  const ikms = ephemeral ? [randomBytes(32), ...secrets.map((s) => Buffer.from(s, 'utf8'))] : secrets.map((s) => Buffer.from(s, 'utf8'))
  return {
    sealing: ikms.map((ikm) => derive(ikm, 'portcullis session id v1')),
    peer: ikms.map((ikm) => derive(ikm, 'portcullis peer request v1')),
    ephemeral,
  }
}

function derive (ikm: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, 'portcullis', info, 32))
}
