import type { FastifyRequest } from 'fastify'
import { invalidRequest } from './errors.ts'

/**
 * The query of a browser-facing OAuth endpoint (/oauth/authorize, /oauth/callback). RFC 6749
 * §3.1: no parameter more than once; one sent without a value counts as omitted.
 */
export function readOAuthQuery (request: FastifyRequest): Map<string, string> {
  const q = request.url.indexOf('?')
  const params = new Map<string, string>()
  for (const [name, value] of new URLSearchParams(q === -1 ? '' : request.url.slice(q + 1))) {
    if (params.has(name)) throw invalidRequest(`The ${name.slice(0, 40)} parameter is repeated`, 'duplicate_parameter')
    if (value !== '') params.set(name, value)
  }
  return params
}
