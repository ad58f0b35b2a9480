import type { FastifyReply, FastifyRequest } from 'fastify'
import type { OAuthError } from '../errors.ts'
import { withParams } from './redirect-uri.ts'

/** Where an authorization-endpoint error may be sent: a redirect URI already matched against the client's registration. */
export interface ValidatedTarget {
  readonly redirectUri: string
  /** the client's `state`, echoed in every answer (RFC 6749 §4.1.2) */
  readonly state: string | undefined
}

/**
 * RFC 6749 §4.1.2.1: when the client or its redirect URI is not valid, the AS "MUST NOT
 * automatically redirect the user-agent to the invalid redirection URI" — the error is shown
 * here. HTML for a browser, the RFC 6749 JSON body for anything else; never a Location header.
 */
export async function sendErrorPage (request: FastifyRequest, reply: FastifyReply, failure: OAuthError): Promise<FastifyReply> {
  // A page for the user, not a token-endpoint answer: 400 (even for invalid_client), or the 5xx it is.
  reply.code(failure.statusCode >= 500 ? failure.statusCode : 400).header('cache-control', 'no-store').header('pragma', 'no-cache')
  if (!(request.headers.accept ?? '').includes('text/html')) return await reply.send(failure.toJSON())
  return await reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    .header('x-frame-options', 'DENY')
    .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title></head>
<body><h1>Sign-in failed</h1><p>${escapeHtml(failure.message)}</p><p>Error: <code>${failure.error}</code></p>
<p>Return to the application and try again.</p></body></html>
`)
}

/** A 302 to the client's validated redirect URI with `params`, plus its `state` and our `iss` (RFC 9207). */
export async function redirectToClient (reply: FastifyReply, target: ValidatedTarget, issuer: string,
  params: Readonly<Record<string, string>>): Promise<FastifyReply> {
  const location = withParams(target.redirectUri, { ...params, state: target.state, iss: issuer })
  return await reply.code(302).header('cache-control', 'no-store').header('pragma', 'no-cache').header('location', location).send()
}

export async function redirectErrorToClient (reply: FastifyReply, target: ValidatedTarget, issuer: string, failure: OAuthError): Promise<FastifyReply> {
  return await redirectToClient(reply, target, issuer, { error: failure.error, error_description: failure.message })
}

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
