import { html, type Html } from '../html.ts'
import type { PlaygroundRow } from '../sources.ts'

export interface PlaygroundForm {
  readonly server: string
  readonly scopes: string
  readonly claims: string
  readonly kind: string
  readonly name: string
}

export function playgroundView (servers: readonly string[], form: PlaygroundForm, rows: readonly PlaygroundRow[] | undefined, error: string | undefined): Html {
  return html`<p>Pick a server, give the scopes and claims of an identity, and see what the gateway would decide for every tool, prompt and resource it knows of —
the same <code>decide()</code> as the request path and <code>portcullis policy explain</code>.</p>
<form id="playground" method="post" action="/playground">
<div class="field"><label for="server">Server</label>
<select id="server" name="server">${servers.map((s) => html`<option${s === form.server ? html` selected` : ''}>${s}</option>`)}</select></div>
<div class="field"><label for="scopes">Scopes (space-separated)</label>
<input id="scopes" name="scopes" type="text" value="${form.scopes}" autocomplete="off" spellcheck="false"></div>
<div class="field"><label for="claims">Claims (JSON object; <code>sub</code>, <code>client_id</code>, <code>issuer</code> too)</label>
<textarea id="claims" name="claims" rows="3" spellcheck="false">${form.claims}</textarea></div>
<div class="field"><label for="kind">Also decide a</label>
<select id="kind" name="kind">${['tool', 'prompt', 'resource'].map((k) => html`<option${k === form.kind ? html` selected` : ''}>${k}</option>`)}</select></div>
<div class="field"><label for="name">named (optional)</label>
<input id="name" name="name" type="text" value="${form.name}" autocomplete="off" spellcheck="false"></div>
<button type="submit">Decide</button>
</form>
<p id="error" class="bad" role="alert">${error ?? ''}</p>
<div class="scroll" tabindex="0" role="region" aria-label="Decisions for this identity"><table id="results"${rows === undefined ? html` hidden` : ''}>
<caption>Decisions for this identity</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Decision</th><th scope="col">Rule</th><th scope="col">Reason</th><th scope="col">Step-up scopes</th></tr></thead>
<tbody>
${(rows ?? []).map((r) => html`<tr><td>${r.kind}</td><th scope="row"><code>${r.name}</code></th><td><span class="verdict ${r.decision}">${r.decision}</span></td>
<td><code>${r.ruleId}</code></td><td>${r.reason}</td><td>${r.requiredScopes.join(' ') || '—'}</td></tr>`)}
</tbody>
</table></div>`
}
