/**
 * The configured identity claims (access-token name ← IdP claim name), copied from an ID-JAG or
 * from a federated login's ID token alike, so that the tool rules see the same identity either
 * way. Only plain JSON values cross: strings, numbers, booleans and lists of strings.
 */
export function mapIdentityClaims (claims: Readonly<Record<string, unknown>>, mapping: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [target, source] of Object.entries(mapping)) {
    const value = claims[source]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[target] = value
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out[target] = value
  }
  return out
}
