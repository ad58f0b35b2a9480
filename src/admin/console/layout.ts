import { html, type Html } from './html.ts'

/** The console's views, in navigation order. */
export const VIEWS = [
  { path: '/', label: 'Servers' },
  { path: '/decisions', label: 'Decisions' },
  { path: '/playground', label: 'Playground' },
  { path: '/tokens', label: 'Tokens' },
  { path: '/idps', label: 'Identity providers' },
  { path: '/keys', label: 'Signing keys' },
  { path: '/config', label: 'Config' },
  { path: '/replicas', label: 'Replicas' },
] as const

export type ViewPath = typeof VIEWS[number]['path']

/** The page around every view: skip link, navigation with the current view marked, one h1. */
export function layout (current: ViewPath, title: string, body: Html): string {
  return '<!doctype html>\n' + html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Portcullis console</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<p class="brand">Portcullis console</p>
<nav aria-label="Console views"><ul>
${VIEWS.map((v) => html`<li><a href="${v.path}"${v.path === current ? html` aria-current="page"` : ''}>${v.label}</a></li>`)}
</ul></nav>
</header>
<main id="main" tabindex="-1">
<h1>${title}</h1>
${body}
</main>
</body>
</html>
`.text
}

/** An ISO time as a <time> element, or a dash. */
export function time (iso: string | undefined): Html {
  return iso === undefined ? html`<span class="none">—</span>` : html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`
}
