import { html, type Html } from '../html.ts'
import { time } from '../layout.ts'
import type { ReplicaView } from '../sources.ts'

export function replicasView (replicas: readonly ReplicaView[] | undefined): Html {
  if (replicas === undefined) return html`<p>No <code>store.url</code>: this gateway runs alone, sharing nothing.</p>`
  return html`<p>The replicas sharing the store: each announces itself every 5 s; one silent for 15 s is gone.</p>
<table>
<caption>Replicas</caption>
<thead><tr><th scope="col">Advertise URL</th><th scope="col">Version</th><th scope="col">Started</th><th scope="col">Heard until</th></tr></thead>
<tbody>
${replicas.map((r) => html`<tr><th scope="row"><code>${r.advertiseUrl}</code>${r.self ? ' (this one)' : ''}</th><td>${r.version}</td><td>${time(r.startedAt)}</td><td>${time(r.expiresAt)}</td></tr>`)}
</tbody>
</table>`
}
