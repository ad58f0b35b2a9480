import type { DecisionEntry } from '../../../telemetry/decision-ring.ts'
import { html, type Html } from '../html.ts'
import { time } from '../layout.ts'

/** One row; console.js builds the same row from /api/decisions (keep the two in step). */
export function decisionRow (d: DecisionEntry, traceUrl: string | undefined): Html {
  return html`<tr>
<td>${time(d.time)}</td><td>${d.server}</td><td>${d.kind}</td><td><code>${d.name}</code></td>
<td><span class="verdict ${d.decision}">${d.decision}</span></td><td><code>${d.ruleId}</code></td><td>${d.reason}</td>
<td>${d.user ?? '—'}</td><td>${d.clientId ?? '—'}</td>
<td>${d.traceId === undefined ? '—' : traceUrl === undefined ? html`<code>${d.traceId}</code>` : html`<a href="${traceUrl}"><code>${d.traceId}</code></a>`}</td>
</tr>`
}

export function decisionsView (decisions: readonly DecisionEntry[], traceUrl: (id: string) => string | undefined): Html {
  return html`<p>The latest denials, <code>would_deny</code> (shadow mode) and step-ups on this replica, newest first. Users are the audit log's pseudonyms.</p>
<p class="controls"><button type="button" id="pause" aria-pressed="false" hidden>Pause updates</button> <span id="updated" class="none"></span></p>
<div class="scroll" tabindex="0" role="region" aria-label="Recent decisions"><table id="decisions" data-source="/api/decisions?limit=100">
<caption>Recent policy decisions</caption>
<thead><tr>
<th scope="col">Time</th><th scope="col">Server</th><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Decision</th>
<th scope="col">Rule</th><th scope="col">Reason</th><th scope="col">User</th><th scope="col">Client</th><th scope="col">Trace</th>
</tr></thead>
<tbody>
${decisions.map((d) => decisionRow(d, d.traceId === undefined ? undefined : traceUrl(d.traceId)))}
</tbody>
</table></div>
${decisions.length === 0 ? html`<p id="empty" class="none">No decision yet.</p>` : ''}`
}
