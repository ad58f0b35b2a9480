import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { asOAuthError, invalidRequest } from '../errors.ts'
import type { CodeGrant } from './codes.ts'
import { CONSENT_PATH, type Consents } from './consent.ts'
import { sendConsentPage } from './consent-page.ts'
import type { LoginContext } from './context.ts'
import { verifyIdToken } from './id-token.ts'
import { mapIdentityClaims } from './identity-claims.ts'
import { denied, exchangeIdpCode, type IdpEndpoints } from './idp-login.ts'
import type { PendingLogin } from './pending-logins.ts'
import { CALLBACK_PATH } from './pending-logins.ts'
import { redirectErrorToClient, redirectToClient, sendErrorPage, type ValidatedTarget } from './responses.ts'
import { readOAuthQuery } from '../query.ts'

/**
 * `GET /oauth/callback`: the IdP's answer to our OIDC login. Our `state` finds the pending login
 * (once: a replayed callback finds nothing) — without it there is no validated client redirect
 * URI, so the error is a page. From there on every failure — a callback from another browser,
 * an IdP error, a refused code exchange, an ID token that fails any check — sends the browser
 * back to the client with `error=access_denied` (or `temporarily_unavailable` when the shared
 * store cannot answer: a 503 page before that point). On success a client the operator configured
 * gets a single-use code bound to it, its redirect URI, its PKCE challenge and the resource; any
 * other client (dynamic, metadata document) gets it only after the user's Allow on the consent
 * page (design §5) — shown here, unless the same user allowed the same request before.
 */
export async function callbackRoute (app: FastifyInstance, { login, consent }: { login: LoginContext, consent: Consents }): Promise<void> {
  app.get(CALLBACK_PATH, async function loginCallback (request, reply) {
    let target: ValidatedTarget | undefined
    let state: string | undefined
    try {
      const params = readOAuthQuery(request)
      const idp = login.idp
      state = params.get('state')
      const pending = state === undefined || idp === undefined ? undefined : await login.pending.take(state)
      if (pending === undefined || state === undefined || idp === undefined) throw invalidRequest('This sign-in is unknown, expired or already finished; start again from the application', 'unknown_state')
      target = { redirectUri: pending.redirectUri, state: pending.clientState }
      reply.header('set-cookie', login.pending.clearCookie(state))
      checkSameBrowser(login, state, pending, request.headers.cookie)
      const endpoints = await idp.discovery.endpoints()
      const idpCode = checkIdpResponse(params, idp.trusted.config.issuer, endpoints)
      const idToken = await exchangeIdpCode(endpoints, idp, login.callbackUrl, idpCode, pending.verifier)
      const claims = await verifyIdToken(idToken, idp, pending.nonce, login.clockSkewSeconds)
      const grant: CodeGrant = {
        clientId: pending.clientId,
        redirectUri: pending.redirectUri,
        codeChallenge: pending.codeChallenge,
        resource: pending.resource,
        scopes: pending.scopes,
        subject: claims.sub,
        idpIssuer: idp.trusted.config.issuer,
        claims: mapIdentityClaims(claims, idp.trusted.config.claims),
      }
      if (consent.required(grant.clientId) && !await consent.remembered(grant)) return await askConsent(reply, login, consent, pending, grant, claims)
      const code = await issueCode(request, login, grant)
      return await redirectToClient(reply, target, login.issuer, { code })
    } catch (err) {
      const failure = asOAuthError(err)
      // design.md §5: a bad IdP response at the callback is access_denied, whatever went wrong —
      // except our own store being unreachable, which the client may retry (RFC 6749 §4.1.2.1).
      const answer = target === undefined || failure.error === 'access_denied' || failure.error === 'temporarily_unavailable' ? failure : denied(failure.message, failure.reason)
      request.log[failure.statusCode >= 500 ? 'error' : 'info']({
        'event.name': 'oauth.authorize',
        outcome: 'rejected',
        'error.type': answer.error,
        'portcullis.auth.reason': failure.reason,
        ...(failure.statusCode >= 500 && failure.cause !== undefined ? { err: failure.cause } : {}),
      }, `login callback rejected: ${failure.reason}`)
      if (target === undefined) return await sendErrorPage(request, reply, failure)
      return await redirectErrorToClient(reply, target, login.issuer, answer)
    }
  })
}

/** A code for the finished login, as the client's redirect gets it: at the callback, or after the consent page's Allow. */
export async function issueCode (request: FastifyRequest, login: LoginContext, grant: CodeGrant): Promise<string> {
  const code = await login.codes.issue(grant)
  request.log.info({ 'event.name': 'oauth.authorize', outcome: 'code_issued', 'portcullis.auth.client_id': grant.clientId, 'portcullis.auth.issuer': grant.idpIssuer },
    'federated login succeeded: authorization code issued')
  return code
}

/** Design §5: no code yet; the finished login waits in the store for the consent page's answer. */
async function askConsent (reply: FastifyReply, login: LoginContext, consent: Consents, pending: PendingLogin, grant: CodeGrant,
  claims: Readonly<Record<string, unknown>>): Promise<FastifyReply> {
  const user = shownUser(claims)
  const asked = await consent.ask({ grant, clientState: pending.clientState, clientName: pending.clientName, user })
  reply.log.info({ 'event.name': 'oauth.authorize', outcome: 'consent_asked', 'portcullis.auth.client_id': grant.clientId, 'portcullis.auth.issuer': grant.idpIssuer },
    'federated login succeeded: the user is asked to allow the client')
  const server = login.servers.find((s) => s.resource === grant.resource)
  return await sendConsentPage(reply.header('set-cookie', asked.cookie), {
    action: `${login.callbackUrl.slice(0, -CALLBACK_PATH.length)}${CONSENT_PATH}`,
    handle: asked.handle,
    csrf: asked.csrf,
    clientName: pending.clientName,
    clientId: grant.clientId,
    redirectUri: grant.redirectUri,
    serverName: server?.name ?? grant.resource,
    resource: grant.resource,
    scopes: grant.scopes,
    user,
  })
}

/** Who signed in, as the consent page names them: the ID token's email, else its username, else its subject. */
function shownUser (claims: Readonly<Record<string, unknown>>): string {
  for (const name of ['email', 'preferred_username', 'sub']) {
    const value = claims[name]
    if (typeof value === 'string' && value !== '') return value
  }
  return 'unknown user'
}

/** The login cookie set at /oauth/authorize: a callback opened in another browser (login CSRF) lacks it. */
function checkSameBrowser (login: LoginContext, state: string, pending: PendingLogin, cookies: string | undefined): void {
  if (!login.pending.boundToBrowser(state, pending, cookies)) throw denied('This sign-in was started in another browser', 'browser_mismatch')
}

/** The IdP's authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`): its code, or why there is none. */
function checkIdpResponse (params: ReadonlyMap<string, string>, issuer: string, endpoints: IdpEndpoints): string {
  const iss = params.get('iss')
  if (iss !== undefined ? iss !== issuer : endpoints.issParameter) throw denied('The sign-in response does not come from the trusted identity provider', 'idp_issuer_mismatch')
  if (params.has('error')) throw denied('The identity provider did not sign the user in', 'idp_error')
  const code = params.get('code')
  if (code === undefined) throw denied('The identity provider\'s response carries no code', 'idp_missing_code')
  return code
}
