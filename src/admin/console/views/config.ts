import { html, type Html } from '../html.ts'
import { time } from '../layout.ts'
import type { ReloadEntry } from '../sources.ts'

export function configView (config: unknown, reloads: readonly ReloadEntry[]): Html {
  return html`<p>The running config, every secret <code>[redacted]</code>.</p>
<h2>Reload history</h2>
<table>
<caption>Reloads since start, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Applied</th><th scope="col">Needs a restart</th></tr></thead>
<tbody>
${reloads.map((r) => html`<tr><td>${time(r.at)}</td><td>${r.applied ? 'yes' : html`<span class="bad">no</span>`}</td><td>${r.restartNeeded.join(', ') || '—'}</td></tr>`)}
</tbody>
</table>
${reloads.length === 0 ? html`<p class="none">No reload since start.</p>` : ''}
<h2>Config</h2>
<pre tabindex="0" aria-label="The running config as JSON"><code>${JSON.stringify(config, null, 2)}</code></pre>`
}
