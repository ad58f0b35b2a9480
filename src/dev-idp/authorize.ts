/**
 * `GET /authorize` and `POST /authorize`: the OIDC authorization endpoint (code flow, PKCE S256
 * required, `state` and `nonce` carried through). The GET validates the client and its exact
 * redirect URI — until both are valid, errors are a page here, never a redirect — then the rest
 * of the request, and shows the user picker. The POST (the picker's form: `tx` and `username`)
 * signs that user in and redirects to the client with a one-minute, single-use code and `iss`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { nowSeconds, type IdpContext } from './context.ts'
import { sendLoginError, sendUserPicker } from './login-page.ts'
import type { LoginRequest } from './login-store.ts'

const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

class PageError extends Error {
  readonly error: string
  constructor (error: string, description: string) {
    super(description)
    this.error = error
  }
}

export const authorizeRoute: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => { done(null, body) })

  app.get('/authorize', async (request, reply) => {
    let params: Map<string, string>
    let client
    try {
      params = singleParams(new URLSearchParams(queryOf(request)))
      const clientId = params.get('client_id')
      client = clientId === undefined ? undefined : ctx.clients.get(clientId)
      if (client === undefined) throw new PageError('invalid_request', 'client_id is missing or names no client of this IdP')
      if (!client.redirectUris.includes(params.get('redirect_uri') ?? '')) throw new PageError('invalid_request', 'redirect_uri is missing or not registered for this client')
    } catch (err) {
      if (!(err instanceof PageError)) throw err
      request.log.info({ error: err.error }, 'authorization request refused')
      return await sendLoginError(reply, 400, err.error, err.message)
    }
    const redirectUri = params.get('redirect_uri') ?? ''
    const state = params.get('state')
    const fail = async (error: string, description: string): Promise<FastifyReply> => {
      request.log.info({ error }, 'authorization request refused')
      return await redirect(reply, redirectUri, { error, error_description: description, state, iss: ctx.issuer() })
    }
    if (params.get('response_type') !== 'code') return await fail('unsupported_response_type', 'response_type must be code')
    const scope = params.get('scope') ?? ''
    if (!scope.split(' ').includes('openid')) return await fail('invalid_scope', 'scope must include openid')
    const challenge = params.get('code_challenge')
    if (challenge === undefined || params.get('code_challenge_method') !== 'S256' || !S256_CHALLENGE.test(challenge)) {
      return await fail('invalid_request', 'PKCE with code_challenge_method S256 is required')
    }
    const login: LoginRequest = { clientId: client.clientId, redirectUri, state, nonce: params.get('nonce'), codeChallenge: challenge, scope }
    return await sendUserPicker(reply, ctx.login.park(login), client.clientId, ctx.config.users)
  })

  app.post('/authorize', async (request, reply) => {
    let form: Map<string, string>
    try {
      form = singleParams(new URLSearchParams(typeof request.body === 'string' ? request.body : ''))
    } catch {
      return await sendLoginError(reply, 400, 'invalid_request', 'a form field is repeated')
    }
    const login = ctx.login.resume(form.get('tx') ?? '')
    if (login === undefined) return await sendLoginError(reply, 400, 'invalid_request', 'This sign-in form has expired or was already used; start again from the application')
    const user = ctx.usersByName.get(form.get('username') ?? '')
    if (user === undefined) return await sendLoginError(reply, 400, 'invalid_request', 'No such user')
    const code = ctx.login.issueCode({ request: login, sub: user.sub, authTime: nowSeconds() })
    request.log.info({ sub: user.sub, client_id: login.clientId }, 'user signed in at the picker (dev only)')
    return await redirect(reply, login.redirectUri, { code, state: login.state, iss: ctx.issuer() })
  })
}

function queryOf (request: FastifyRequest): string {
  const q = request.url.indexOf('?')
  return q === -1 ? '' : request.url.slice(q + 1)
}

/** Each parameter at most once (RFC 6749 §3.1); an empty one counts as absent. */
function singleParams (search: URLSearchParams): Map<string, string> {
  const params = new Map<string, string>()
  for (const [name, value] of search) {
    if (params.has(name)) throw new PageError('invalid_request', 'a parameter is repeated')
    if (value !== '') params.set(name, value)
  }
  return params
}

async function redirect (reply: FastifyReply, redirectUri: string, params: Record<string, string | undefined>): Promise<FastifyReply> {
  const url = new URL(redirectUri)
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value)
  return await reply.code(302).header('cache-control', 'no-store').header('location', url.href).send()
}
