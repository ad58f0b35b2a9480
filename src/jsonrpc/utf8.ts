const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * `bytes` as text if they are valid UTF-8, else undefined: never "repaired" with U+FFFD. A byte
 * order mark is kept as U+FEFF (so JSON.parse refuses it) rather than silently dropped.
 */
export function decodeUtf8Strict (bytes: Uint8Array): string | undefined {
  try {
    return strict.decode(bytes)
  } catch {
    return undefined
  }
}
