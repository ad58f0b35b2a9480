import { html, type Html } from '../html.ts'
import { time } from '../layout.ts'
import type { IdpView } from '../sources.ts'

export function idpsView (idps: readonly IdpView[]): Html {
  return html`<p>The trusted identity providers and the state of their signing keys (JWKS), as this replica last fetched them.</p>
<table>
<caption>Trusted identity providers</caption>
<thead><tr><th scope="col">Issuer</th><th scope="col">JWKS</th><th scope="col">Last fetch</th><th scope="col">Key ids</th><th scope="col">Last error</th></tr></thead>
<tbody>
${idps.map((i) => html`<tr>
<th scope="row"><code>${i.issuer}</code></th><td>${i.jwksUri === undefined ? 'from discovery' : html`<code>${i.jwksUri}</code>`}</td>
<td>${time(i.lastFetchAt)}</td><td>${i.kids.length === 0 ? html`<span class="none">none yet</span>` : html`<ul class="plain">${i.kids.map((k) => html`<li><code>${k}</code></li>`)}</ul>`}</td>
<td>${i.lastError === undefined ? html`<span class="none">—</span>` : html`<span class="bad">${i.lastError.message}</span> ${time(i.lastError.at)}`}</td>
</tr>`)}
</tbody>
</table>
${idps.length === 0 ? html`<p class="none">No identity provider is configured.</p>` : ''}`
}
