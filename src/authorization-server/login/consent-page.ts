import { createHash } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { escapeHtml } from './responses.ts'

/** What the consent page shows, and the form's secrets. */
export interface ConsentView {
  /** the form's target: `{publicUrl}/oauth/consent` */
  readonly action: string
  readonly handle: string
  readonly csrf: string
  readonly clientName: string | undefined
  readonly clientId: string
  readonly redirectUri: string
  readonly serverName: string
  readonly resource: string
  readonly scopes: readonly string[]
  readonly user: string
}

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:2em auto;padding:0 1em;color:#222}' +
  'dd{margin:0 0 .6em;overflow-wrap:anywhere}dt{font-weight:600}.to{font-size:1.3em;background:#fff3cd;padding:.4em;overflow-wrap:anywhere}' +
  'code{overflow-wrap:anywhere}button{font-size:1em;padding:.5em 1.5em;margin-right:1em}'
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64')
/** at most this many characters of a client-chosen text */
const MAX_SHOWN = 80
/** C0/C1 controls, bidi overrides and isolates, zero-width characters: nothing a name may hide behind */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\u{e0000}-\u{e007f}]/gu

/**
 * The consent page: a form whose only targets are this gateway and — where the answer redirects
 * — the client's redirect URI (CSP form-action, which browsers also apply to the redirect), no
 * script, no framing, no caching, no Referer. Every client-chosen text is escaped, stripped of
 * controls and direction overrides, and cut short.
 */
export async function sendConsentPage (reply: FastifyReply, view: ConsentView): Promise<FastifyReply> {
  const host = shownHost(view.redirectUri)
  return await reply.code(200)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action 'self' ${formTarget(view.redirectUri)}; frame-ancestors 'none'; base-uri 'none'`)
    .send(consentHtml(view, host))
}

export function consentHtml (view: ConsentView, host: string): string {
  const name = view.clientName === undefined ? '<i>unnamed client</i>' : `<bdi>${shown(view.clientName)}</bdi>`
  const scopes = view.scopes.length === 0 ? '<i>none</i>' : view.scopes.map((s) => `<code>${shown(s)}</code>`).join(' ')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="referrer" content="no-referrer">
<title>Allow access?</title><style>${STYLE}</style></head>
<body><h1>Allow an application to use ${shown(view.serverName)}?</h1>
<p>An application your administrator did not register asks to act as you. If you allow it, the sign-in is sent to:</p>
<p class="to"><strong>${shown(host)}</strong></p>
<dl>
<dt>Application</dt><dd>${name}<br><code>${shown(view.clientId)}</code></dd>
<dt>Sends you back to</dt><dd><code>${shown(view.redirectUri, 200)}</code></dd>
<dt>Server</dt><dd>${shown(view.serverName)} <code>${shown(view.resource)}</code></dd>
<dt>Access</dt><dd>${scopes}</dd>
<dt>Signed in as</dt><dd><bdi>${shown(view.user)}</bdi></dd>
</dl>
<p>Allow only if you started this sign-in yourself and trust <strong>${shown(host)}</strong>.</p>
<form method="post" action="${escapeHtml(view.action)}">
<input type="hidden" name="handle" value="${escapeHtml(view.handle)}">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">
<button type="submit" name="decision" value="deny">Deny</button>
<button type="submit" name="decision" value="allow">Allow</button>
</form></body></html>
`
}

/** A client-chosen text as it may appear: hidden characters made visible, length capped, HTML-escaped. */
export function shown (text: string, max = MAX_SHOWN): string {
  const chars = [...text.replace(HIDDEN, '\ufffd')]
  return escapeHtml(chars.length > max ? `${chars.slice(0, max).join('')}…` : chars.join(''))
}

/** Where the code goes, as the user should read it: the redirect URI's host (IDNs in punycode) and port. */
export function shownHost (redirectUri: string): string {
  const url = URL.parse(redirectUri)
  if (url === null) return redirectUri
  return url.host === '' ? url.protocol : url.host
}

/** The redirect URI's origin (or scheme) as a CSP source: URL parsing leaves no space, quote or semicolon in it. */
function formTarget (redirectUri: string): string {
  const url = URL.parse(redirectUri)
  if (url === null) return ''
  const source = url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol
  return /^[A-Za-z0-9+.:/[\]-]+$/.test(source) ? source : ''
}
