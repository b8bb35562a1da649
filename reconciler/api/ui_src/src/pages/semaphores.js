// Semaphores and mutexes in use: each Lock with its size, holders and the workflows waiting for it.
import { get, q } from '../api.js'
import { clear, h } from '../dom.js'
import { heading } from './common.js'

const REFRESH_MS = 3000

export function semaphoresPage(main) {
  document.title = 'Semaphores - reconciler'
  const note = h('span', { class: 'live', role: 'status' }, 'Loading…')
  const tbody = h('tbody', { id: 'lock-rows' })
  main.append(heading('Semaphores and mutexes', note),
    h('table', { class: 'list', id: 'semaphores' }, h('caption', { class: 'visually-hidden' }, 'Locks'),
      h('thead', {}, h('tr', {}, ['Lock', 'Namespace', 'Size', 'Holders', 'Waiting'].map(t => h('th', { scope: 'col' }, t)))),
      tbody))

  async function load() {
    try {
      const [locks, workflows] = await Promise.all([get('/api/v1/semaphores'), get('/api/v1/workflows')])
      clear(tbody)
      for (const lock of locks.items) {
        const label = (lock.spec || {}).description || lock.metadata.name
        const status = lock.status || {}
        // A waiting workflow says so in its message ("Waiting for <lock>, n/m held"), as `reconciler get` shows.
        const waiting = workflows.items.filter(w => (w.metadata.namespace === lock.metadata.namespace) &&
          ((w.status || {}).message || '').startsWith(`Waiting for ${label}`))
        tbody.append(h('tr', { dataset: { lock: lock.metadata.name } },
          h('td', {}, label), h('td', {}, lock.metadata.namespace),
          h('td', {}, status.size ?? ''),
          h('td', {}, h('ul', { class: 'plain' }, (status.holders || []).map(holder => h('li', {}, holderLink(holder))))),
          h('td', {}, h('ul', { class: 'plain' }, waiting.map(w => h('li', {},
            h('a', { href: `#/workflows/${q(w.metadata.namespace)}/${q(w.metadata.name)}` }, w.metadata.name)))))))
      }
      if (!locks.items.length) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No lock is in use.')))
      note.textContent = `Updated ${new Date().toLocaleTimeString()}`
    } catch (err) {
      note.textContent = `Error: ${err.message}`
    }
  }

  load()
  const timer = setInterval(load, REFRESH_MS)
  return () => clearInterval(timer)
}

function holderLink(holder) {
  const [ns, name, node] = holder.split('/')
  return h('a', { href: `#/workflows/${q(ns)}/${q(name)}` }, node ? `${name} (node ${node})` : `${ns}/${name}`)
}
