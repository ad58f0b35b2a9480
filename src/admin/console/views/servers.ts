import { html, type Html } from '../html.ts'
import { time } from '../layout.ts'
import type { ServerView } from '../sources.ts'

export function serversView (servers: readonly ServerView[]): Html {
  return html`<p>Every configured server, its upstream (credentials redacted) and what this replica last heard from it.</p>
<div class="scroll" tabindex="0" role="region" aria-label="Servers"><table>
<caption>Servers</caption>
<thead><tr>
<th scope="col">Server</th><th scope="col">Transport</th><th scope="col">Upstream</th><th scope="col">Mode</th><th scope="col">Auth</th>
<th scope="col">Last success</th><th scope="col">Last error</th><th scope="col">Sessions</th><th scope="col">Streams</th><th scope="col">Tools last listed (rules naming them)</th>
</tr></thead>
<tbody>
${servers.map((s) => html`<tr data-server="${s.name}">
<th scope="row">${s.name}</th><td>${s.transport}</td><td><code>${s.url}</code></td><td>${s.mode}</td><td>${s.auth}</td>
<td>${time(s.health.lastSuccessAt)}</td>
<td>${s.health.lastError === undefined ? html`<span class="none">—</span>` : html`<span class="bad">${s.health.lastError.reason}</span> ${time(s.health.lastError.at)}`}</td>
<td>${s.sessions}</td><td>${s.streams}</td>
<td>${s.toolRules.length === 0
  ? html`<span class="none">not listed yet</span>`
  : html`<ul class="plain">${s.toolRules.map((t) => html`<li><code>${t.name}</code> <span class="rule">${t.ruleIds.join(', ')}</span></li>`)}</ul>`}</td>
</tr>`)}
</tbody>
</table></div>`
}
