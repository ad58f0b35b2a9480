import { html, type Html } from '../html.ts'
import type { TokenCount } from '../sources.ts'

export function tokensView (tokens: readonly TokenCount[]): Html {
  return html`<p>Token endpoint requests since this replica started, by grant type and outcome; rejections with their OAuth error and reason.</p>
<table>
<caption>Token requests</caption>
<thead><tr><th scope="col">Grant type</th><th scope="col">Outcome</th><th scope="col">Error</th><th scope="col">Reason</th><th scope="col">Count</th></tr></thead>
<tbody>
${tokens.map((t) => html`<tr><td><code>${t.grantType}</code></td><td>${t.outcome}</td><td>${t.error || '—'}</td><td>${t.reason || '—'}</td><td>${t.count}</td></tr>`)}
</tbody>
</table>
${tokens.length === 0 ? html`<p class="none">No token request yet.</p>` : ''}`
}
