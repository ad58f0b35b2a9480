import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { asOAuthError, invalidRequest, type OAuthError } from '../errors.ts'
import { issueCode } from './callback.ts'
import type { LoginContext } from './context.ts'
import { CONSENT_PATH, type Consents } from './consent.ts'
import { withParams } from './redirect-uri.ts'
import { sendErrorPage, type ValidatedTarget } from './responses.ts'

const MAX_FORM_BYTES = 2048
const FIELDS = ['handle', 'csrf', 'decision'] as const

interface ConsentForm {
  readonly handle: string
  readonly csrf: string
  readonly decision: 'allow' | 'deny'
}

const REFUSALS = {
  unknown: 'This consent is unknown, expired or already answered; start again from the application',
  csrf_mismatch: 'This answer was not sent by the consent page',
  browser_mismatch: 'This answer comes from another browser than the sign-in',
} as const

/**
 * `POST /oauth/consent`: the Allow or Deny of the consent page. The form must come from our own
 * page — form-urlencoded, each field once, no Origin, Referer or Sec-Fetch-Site of another site —
 * and carry the handle and CSRF token of a waiting login, from the browser holding its cookie;
 * it is answered once. Anything else is a 400 page (never a redirect, never a code). Allow
 * remembers the choice and sends the client its code; Deny sends `error=access_denied`. Both
 * redirects are 303 (the browser follows with a GET) with the client's `state` and our `iss`.
 */
export async function consentRoute (app: FastifyInstance, { login, consent }: { login: LoginContext, consent: Consents }): Promise<void> {
  const origin = new URL(login.callbackUrl).origin
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_FORM_BYTES }, function keepRawBody (_request, body, done) { done(null, body) })
  app.setErrorHandler(async function consentErrorHandler (_err, request, reply) {
    return await refuse(request, reply, invalidRequest('The consent form could not be read', 'malformed_form'))
  })
  app.get(CONSENT_PATH, async function consentByGet (request, reply) {
    return await refuse(request, reply, invalidRequest('The consent is answered with the form of its page', 'consent_not_post'))
  })
  app.post(CONSENT_PATH, async function answerConsent (request, reply) {
    let target: ValidatedTarget | undefined
    try {
      checkSameOrigin(request.headers, origin)
      const form = readForm(request.headers['content-type'], request.body)
      const found = await consent.find(form.handle, form.csrf, request.headers.cookie)
      if (typeof found === 'string') throw invalidRequest(REFUSALS[found], found === 'unknown' ? 'unknown_consent' : found)
      if (!await consent.take(form.handle)) throw invalidRequest(REFUSALS.unknown, 'unknown_consent')
      reply.header('set-cookie', consent.clearCookie(form.handle))
      target = { redirectUri: found.grant.redirectUri, state: found.clientState }
      const client = { 'portcullis.auth.client_id': found.grant.clientId, 'portcullis.server': found.grant.resource }
      if (form.decision === 'deny') {
        request.log.info({ 'event.name': 'oauth.consent', outcome: 'denied', ...client }, 'consent denied by the user')
        return await redirect(reply, target, login.issuer, { error: 'access_denied', error_description: 'The user did not allow this application' })
      }
      await consent.remember(found.grant)
      request.log.info({ 'event.name': 'oauth.consent', outcome: 'allowed', ...client }, 'consent given by the user')
      return await redirect(reply, target, login.issuer, { code: await issueCode(request, login, found.grant) })
    } catch (err) {
      const failure = asOAuthError(err)
      if (target === undefined) return await refuse(request, reply, failure)
      logRefusal(request, failure)
      return await redirect(reply, target, login.issuer, { error: failure.error, error_description: failure.message })
    }
  })
}

/** A 400 page (5xx when the store failed), never a redirect. */
async function refuse (request: FastifyRequest, reply: FastifyReply, failure: OAuthError): Promise<FastifyReply> {
  logRefusal(request, failure)
  return await sendErrorPage(request, reply, failure)
}

function logRefusal (request: FastifyRequest, failure: OAuthError): void {
  request.log[failure.statusCode >= 500 ? 'error' : 'info']({
    'event.name': 'oauth.consent',
    outcome: 'rejected',
    'error.type': failure.error,
    'portcullis.auth.reason': failure.reason,
    ...(failure.statusCode >= 500 && failure.cause !== undefined ? { err: failure.cause } : {}),
  }, `consent answer rejected: ${failure.reason}`)
}

/** Browsers name the page a form was posted from; one of another site (or an opaque `null`) is a forgery. */
function checkSameOrigin (headers: IncomingHttpHeaders, origin: string): void {
  const referer = headers.referer === undefined ? undefined : URL.parse(headers.referer)?.origin ?? 'invalid'
  const site = headers['sec-fetch-site']
  if ((headers.origin !== undefined && headers.origin !== origin) || (referer !== undefined && referer !== origin) ||
    (site !== undefined && site !== 'same-origin')) {
    throw invalidRequest('This answer was not sent from the consent page of this gateway', 'cross_origin')
  }
}

/** The form, each field exactly once and nothing else. */
function readForm (contentType: string | undefined, body: unknown): ConsentForm {
  if ((contentType ?? '').split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    throw invalidRequest('The consent answer must be a form (application/x-www-form-urlencoded)', 'wrong_content_type')
  }
  if (typeof body !== 'string') throw invalidRequest('The consent form is empty', 'malformed_form')
  const fields = new Map<string, string>()
  for (const [name, value] of new URLSearchParams(body)) {
    if (!(FIELDS as readonly string[]).includes(name)) throw invalidRequest('The consent form has an unexpected field', 'unexpected_parameter')
    if (fields.has(name)) throw invalidRequest(`The ${name} field is repeated`, 'duplicate_parameter')
    fields.set(name, value)
  }
  const handle = fields.get('handle')
  const csrf = fields.get('csrf')
  const decision = fields.get('decision')
  if (handle === undefined || handle === '' || csrf === undefined || csrf === '') throw invalidRequest('The consent form lacks its handle or CSRF token', 'missing_csrf')
  if (decision !== 'allow' && decision !== 'deny') throw invalidRequest('The decision must be allow or deny', 'bad_decision')
  return { handle, csrf, decision }
}

/** RFC 6749 §4.1.2: to the validated redirect URI, with the client's `state` and our `iss` (RFC 9207); 303 after a POST. */
async function redirect (reply: FastifyReply, target: ValidatedTarget, issuer: string, params: Readonly<Record<string, string>>): Promise<FastifyReply> {
  const location = withParams(target.redirectUri, { ...params, state: target.state, iss: issuer })
  return await reply.code(303).header('cache-control', 'no-store').header('pragma', 'no-cache').header('location', location).send()
}
