import type { Identity, Item } from './sources.ts'

export interface ExplainInput {
  readonly identity: Identity
  readonly item: Item | undefined
}

const KINDS = ['tool', 'prompt', 'resource'] as const

/**
 * The one parser of what a playground or `/api/explain` caller sends, as JSON
 * (`{"server", "tool" | "prompt" | "resource", "scopes": [...], "claims": {...}}`) or as the
 * playground's form (`server`, `scopes` "a b", `claims` JSON text, `kind`, `name`).
 */
export function parseExplainInput (body: unknown): ExplainInput | { readonly error: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { error: 'expected an object' }
  const b = body as Record<string, unknown>
  if (typeof b.server !== 'string' || b.server === '') return { error: 'server is required' }
  let scopes: string[]
  if (b.scopes === undefined) scopes = []
  else if (typeof b.scopes === 'string') scopes = b.scopes.split(/\s+/).filter((s) => s !== '')
  else if (Array.isArray(b.scopes) && b.scopes.every((s) => typeof s === 'string')) scopes = b.scopes as string[]
  else return { error: 'scopes must be a list of strings' }
  let claims: unknown = b.claims ?? {}
  if (typeof claims === 'string') {
    try {
      claims = claims.trim() === '' ? {} : JSON.parse(claims)
    } catch {
      return { error: 'claims must be a JSON object, e.g. {"groups":["eng"]}' }
    }
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return { error: 'claims must be a JSON object, e.g. {"groups":["eng"]}' }
  let item: Item | undefined
  for (const kind of KINDS) {
    const name = b[kind]
    if (name === undefined) continue
    if (typeof name !== 'string' || item !== undefined) return { error: 'name one tool, prompt or resource' }
    item = { kind, name }
  }
  if (item === undefined && typeof b.name === 'string' && b.name !== '') {
    const kind = b.kind ?? 'tool'
    if (!KINDS.includes(kind as Item['kind'])) return { error: 'kind must be tool, prompt or resource' }
    item = { kind: kind as Item['kind'], name: b.name }
  }
  return { identity: { server: b.server, scopes, claims: claims as Record<string, unknown> }, item }
}
