import { html, type Html } from '../html.ts'
import type { KeyView } from '../sources.ts'

export function keysView (keys: readonly KeyView[]): Html {
  return html`<p>The keys access tokens are signed and verified with. Key material is never shown.</p>
${keys.some((k) => k.ephemeral) ? html`<p class="warn" role="note">Ephemeral key: tokens die with this process. Set <code>authorization.signingKeys</code>.</p>` : ''}
<table>
<caption>Signing keys</caption>
<thead><tr><th scope="col">Key id</th><th scope="col">Algorithm</th><th scope="col">Status</th></tr></thead>
<tbody>
${keys.map((k) => html`<tr><th scope="row"><code>${k.kid}</code></th><td>${k.alg}</td><td>${k.status}</td></tr>`)}
</tbody>
</table>`
}
