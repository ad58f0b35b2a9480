import type { Config } from '../../config/types.ts'

export const REDACTED = '[redacted]'

/** A URL without its credentials: userinfo and every query value replaced. Not a URL: redacted whole. */
export function redactUrl (url: string): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return REDACTED
  }
  if (u.username !== '' || u.password !== '') {
    u.username = 'redacted'
    u.password = ''
  }
  for (const key of [...new Set(u.searchParams.keys())]) u.searchParams.set(key, 'redacted')
  return u.href
}

function redactValues (record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(record).map((k) => [k, REDACTED]))
}

/**
 * The config as JSON with every secret `[redacted]`: client secrets, IdP login secrets, upstream
 * header values, stdio environment values, the admin token, and credentials in URLs (upstreams,
 * store). Key names stay, so one sees what is set. Signing key paths and public JWKS are not secret.
 */
export function redactConfig (config: Config): unknown {
  const auth = config.authorization
  return {
    ...config,
    admin: { ...config.admin, token: config.admin.token === undefined ? undefined : REDACTED },
    authorization: {
      ...auth,
      clients: auth.clients.map((c) => ({ ...c, secret: c.secret === undefined ? undefined : REDACTED })),
      identityProviders: auth.identityProviders.map((idp) => ({
        ...idp,
        jwksUri: idp.jwksUri === undefined ? undefined : redactUrl(idp.jwksUri),
        login: idp.login === undefined ? undefined : { ...idp.login, clientSecret: idp.login.clientSecret === undefined ? undefined : REDACTED },
      })),
    },
    store: config.store === undefined ? undefined : { ...config.store, url: redactUrl(config.store.url) },
    servers: Object.fromEntries(Object.entries(config.servers).map(([name, server]) => {
      const upstream = server.upstream
      const redacted = upstream.transport === 'stdio'
        ? { ...upstream, headers: redactValues(upstream.headers), env: redactValues(upstream.env) }
        : { ...upstream, headers: redactValues(upstream.headers), url: redactUrl(upstream.url) }
      return [name, { ...server, upstream: redacted }]
    })),
  }
}
