/**
 * The dev IdP's user picker: one button per user of the YAML. Posting it with a username signs
 * that user in — no password. Development only, and the page says so.
 */
import type { FastifyReply } from 'fastify'
import type { DevIdpUser } from './config.ts'

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function htmlHeaders (reply: FastifyReply, status: number): FastifyReply {
  return reply.code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

export async function sendUserPicker (reply: FastifyReply, tx: string, clientId: string, users: readonly DevIdpUser[]): Promise<FastifyReply> {
  const buttons = users.map((user) => {
    const about = [user.name, user.email, user.groups.length > 0 ? `groups: ${user.groups.join(', ')}` : 'no groups'].filter((x) => x !== undefined).join(' · ')
    return `  <p><button type="submit" name="username" value="${escapeHtml(user.username)}">${escapeHtml(user.username)}</button> <small>${escapeHtml(about)}</small></p>`
  })
  return await htmlHeaders(reply, 200).send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>portcullis dev IdP — sign in</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<p style="background: #fee; border: 1px solid #c00; padding: .5em"><strong>DEVELOPMENT ONLY.</strong>
This is the portcullis dev IdP: it signs in whichever user you pick, without a password. Never use it for anything real.</p>
<h1>Sign in to <code>${escapeHtml(clientId)}</code> as…</h1>
<form method="post" action="/authorize">
  <input type="hidden" name="tx" value="${escapeHtml(tx)}">
${buttons.join('\n')}
</form>
</body></html>
`)
}

/** An error the browser sees here, never redirected (unknown client, unregistered redirect URI, stale form). */
export async function sendLoginError (reply: FastifyReply, status: number, error: string, description: string): Promise<FastifyReply> {
  return await htmlHeaders(reply, status).send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>portcullis dev IdP — error</title></head>
<body><h1>Sign-in failed</h1><p>${escapeHtml(description)}</p><p>Error: <code>${escapeHtml(error)}</code></p></body></html>
`)
}
