// Portcullis console: progressive enhancement only — every view works without this file.
'use strict'

function cell (row, text, tag) {
  const el = document.createElement(tag || 'td')
  if (text instanceof Node) el.appendChild(text)
  else el.textContent = text === undefined || text === null || text === '' ? '—' : String(text)
  row.appendChild(el)
  return el
}

function code (text) {
  const el = document.createElement('code')
  el.textContent = text
  return el
}

function verdict (decision) {
  const el = document.createElement('span')
  el.className = 'verdict ' + decision
  el.textContent = decision
  return el
}

function timeOf (iso) {
  const el = document.createElement('time')
  el.dateTime = iso
  el.textContent = iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  return el
}

// Decisions: refresh the table from /api/decisions every second, unless paused.
function liveDecisions (table) {
  const body = table.tBodies[0]
  const pause = document.getElementById('pause')
  const updated = document.getElementById('updated')
  let paused = false
  pause.hidden = false
  pause.addEventListener('click', function () {
    paused = !paused
    pause.setAttribute('aria-pressed', String(paused))
    pause.textContent = paused ? 'Resume updates' : 'Pause updates'
  })
  async function refresh () {
    if (paused) return
    try {
      const res = await fetch(table.dataset.source, { headers: { accept: 'application/json' } })
      if (!res.ok) return
      const { decisions } = await res.json()
      const rows = decisions.map(function (d) {
        const tr = document.createElement('tr')
        cell(tr, timeOf(d.time))
        cell(tr, d.server)
        cell(tr, d.kind)
        cell(tr, code(d.name))
        cell(tr, verdict(d.decision))
        cell(tr, code(d.ruleId))
        cell(tr, d.reason)
        cell(tr, d.user)
        cell(tr, d.clientId)
        if (d.traceId === undefined) cell(tr, '—')
        else if (d.traceUrl === undefined) cell(tr, code(d.traceId))
        else {
          const a = document.createElement('a')
          a.href = d.traceUrl
          a.appendChild(code(d.traceId))
          cell(tr, a)
        }
        return tr
      })
      body.replaceChildren.apply(body, rows)
      const empty = document.getElementById('empty')
      if (empty !== null && rows.length > 0) empty.remove()
      updated.textContent = 'Updated ' + new Date().toLocaleTimeString()
    } catch (err) {
      updated.textContent = 'Not updated: ' + err.message
    }
  }
  setInterval(refresh, 1000)
}

// Playground: decide with fetch, without reloading the page (the form posts on its own without JS).
function playground (form) {
  const table = document.getElementById('results')
  const error = document.getElementById('error')
  form.addEventListener('submit', async function (event) {
    event.preventDefault()
    const data = Object.fromEntries(new FormData(form))
    try {
      const res = await fetch('/api/playground', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(data) })
      const answer = await res.json()
      if (!res.ok) {
        error.textContent = answer.error || ('HTTP ' + res.status)
        return
      }
      error.textContent = ''
      const rows = answer.rows.map(function (r) {
        const tr = document.createElement('tr')
        cell(tr, r.kind)
        cell(tr, code(r.name), 'th').scope = 'row'
        cell(tr, verdict(r.decision))
        cell(tr, code(r.ruleId))
        cell(tr, r.reason)
        cell(tr, r.requiredScopes.join(' '))
        return tr
      })
      table.tBodies[0].replaceChildren.apply(table.tBodies[0], rows)
      table.hidden = false
    } catch (err) {
      error.textContent = err.message
    }
  })
}

document.addEventListener('DOMContentLoaded', function () {
  const decisions = document.getElementById('decisions')
  if (decisions !== null) liveDecisions(decisions)
  const form = document.getElementById('playground')
  if (form !== null) playground(form)
})
