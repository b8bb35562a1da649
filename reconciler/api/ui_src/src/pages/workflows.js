// Workflows: every namespace the token may read, filtered by namespace, phase, label and cron workflow,
// sortable, kept current by the change stream; and a form to submit one.
import { call, q } from '../api.js'
import { ago, between, clear, duration, h, phaseBadge, toast } from '../dom.js'
import { watch } from '../stream.js'
import { heading, liveState } from './common.js'

const CRON_LABEL = 'workflows.argoproj.io/cron-workflow'
const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Error']
const COLUMNS = [
  ['name', 'Name', w => w.metadata.name],
  ['namespace', 'Namespace', w => w.metadata.namespace || ''],
  ['phase', 'Phase', w => (w.status || {}).phase || 'Pending'],
  ['created', 'Created', w => w.metadata.creationTimestamp || ''],
  ['duration', 'Duration', w => between((w.status || {}).startedAt, (w.status || {}).finishedAt) ?? -1],
  ['progress', 'Progress', w => (w.status || {}).progress || ''],
]

export function workflowsPage(main) {
  document.title = 'Workflows - reconciler'
  const live = h('span', { class: 'live', role: 'status' }, 'Connecting…')
  const workflows = new Map()
  const state = { sort: 'created', desc: true, namespace: '', phase: '', label: '', cron: '' }

  const nsSelect = h('select', { id: 'f-namespace' }, h('option', { value: '' }, 'All'))
  const phaseSelect = h('select', { id: 'f-phase' }, h('option', { value: '' }, 'All'),
    PHASES.map(p => h('option', { value: p }, p)))
  const labelInput = h('input', { id: 'f-label', type: 'search', placeholder: 'key=value' })
  const cronSelect = h('select', { id: 'f-cron' }, h('option', { value: '' }, 'Any'),
    h('option', { value: '*' }, 'From any cron workflow'), h('option', { value: '-' }, 'Not from a cron workflow'))
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter workflows', onsubmit: e => e.preventDefault() },
    h('label', { for: 'f-namespace' }, 'Namespace'), nsSelect,
    h('label', { for: 'f-phase' }, 'Phase'), phaseSelect,
    h('label', { for: 'f-label' }, 'Label'), labelInput,
    h('label', { for: 'f-cron' }, 'Cron workflow'), cronSelect)
  for (const [el, key] of [[nsSelect, 'namespace'], [phaseSelect, 'phase'], [labelInput, 'label'], [cronSelect, 'cron']]) {
    for (const type of ['input', 'change']) el.addEventListener(type, () => { state[key] = el.value.trim(); schedule() })
  }

  const count = h('p', { class: 'muted', id: 'wf-count', 'aria-live': 'polite' })
  const headRow = h('tr')
  const tbody = h('tbody', { id: 'wf-rows' })
  const table = h('table', { class: 'list', id: 'workflows' }, h('caption', { class: 'visually-hidden' }, 'Workflows'),
    h('thead', {}, headRow), tbody)
  main.append(heading('Workflows', live), submitForm(), filters, count, table)

  function renderHead() {
    clear(headRow)
    for (const [key, title] of COLUMNS) {
      const sorted = state.sort === key
      headRow.append(h('th', { scope: 'col', 'aria-sort': sorted ? (state.desc ? 'descending' : 'ascending') : 'none' },
        h('button', {
          type: 'button', class: 'sort', dataset: { sort: key },
          onclick: () => { state.desc = state.sort === key ? !state.desc : false; state.sort = key; renderHead(); render() },
        }, title, sorted ? (state.desc ? ' ▼' : ' ▲') : '')))
    }
  }

  function matches(w) {
    const labels = w.metadata.labels || {}
    if (state.namespace && w.metadata.namespace !== state.namespace) return false
    if (state.phase && ((w.status || {}).phase || 'Pending') !== state.phase) return false
    if (state.label) {
      for (const term of state.label.split(',')) {
        const [k, v] = term.split('=').map(s => s.trim())
        if (!k) continue
        if (v === undefined ? !(k in labels) : labels[k] !== v) return false
      }
    }
    if (state.cron === '*' && !labels[CRON_LABEL]) return false
    if (state.cron === '-' && labels[CRON_LABEL]) return false
    if (state.cron && !['*', '-'].includes(state.cron) && labels[CRON_LABEL] !== state.cron) return false
    return true
  }

  let pending = false
  function schedule() {
    if (pending) return
    pending = true
    requestAnimationFrame(() => { pending = false; render() })
  }

  function render() {
    const column = COLUMNS.find(c => c[0] === state.sort)
    const rows = [...workflows.values()].filter(matches)
    rows.sort((a, b) => {
      const x = column[2](a), y = column[2](b)
      const order = x < y ? -1 : x > y ? 1 : 0
      return state.desc ? -order : order
    })
    const fragment = document.createDocumentFragment()
    for (const w of rows) {
      const ns = w.metadata.namespace || ''
      const s = w.status || {}
      fragment.append(h('tr', { dataset: { name: w.metadata.name, phase: s.phase || 'Pending' } },
        h('td', {}, h('a', { href: `#/workflows/${q(ns)}/${q(w.metadata.name)}` }, w.metadata.name)),
        h('td', {}, ns),
        h('td', {}, phaseBadge(s.phase)),
        h('td', { title: w.metadata.creationTimestamp || '' }, ago(w.metadata.creationTimestamp)),
        h('td', {}, duration(between(s.startedAt, s.finishedAt))),
        h('td', {}, s.progress || '')))
    }
    clear(tbody).append(fragment)
    count.textContent = `${rows.length} of ${workflows.size} workflows`
    // namespaces and cron workflows seen so far feed the filters
    const namespaces = new Set([...workflows.values()].map(w => w.metadata.namespace))
    for (const ns of namespaces) {
      if (![...nsSelect.options].some(o => o.value === ns)) nsSelect.append(h('option', { value: ns }, ns))
    }
    const crons = new Set([...workflows.values()].map(w => (w.metadata.labels || {})[CRON_LABEL]).filter(Boolean))
    for (const c of crons) {
      if (![...cronSelect.options].some(o => o.value === c)) cronSelect.append(h('option', { value: c }, c))
    }
    main.dataset.rendered = String(rows.length)
  }

  const stream = watch('/api/v1/workflow-events', {
    onEvents(events) {
      for (const { type, object } of events) {
        const key = `${object.metadata.namespace}/${object.metadata.name}`
        if (type === 'DELETED') workflows.delete(key); else workflows.set(key, object)
      }
      schedule()
    },
    onReset() { workflows.clear() },
    onState: liveState(live),
  })
  renderHead()
  render()
  return () => stream.close()
}

function submitForm() {
  const ns = h('input', { id: 'submit-namespace', value: 'default', required: true })
  const manifest = h('textarea', { id: 'submit-manifest', rows: 10, required: true, spellcheck: 'false',
    placeholder: 'apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n...' })
  const form = h('form', { class: 'submit', id: 'submit-form' },
    h('label', { for: 'submit-namespace' }, 'Namespace'), ns,
    h('label', { for: 'submit-manifest' }, 'Workflow manifest (YAML)'), manifest,
    h('button', { type: 'submit' }, 'Submit'))
  form.addEventListener('submit', async e => {
    e.preventDefault()
    try {
      const r = await call('POST', `/api/v1/workflows/${q(ns.value.trim())}`, { manifest: manifest.value, filename: 'ui' })
      const first = r.items[0]
      toast(`Submitted ${r.items.map(w => w.metadata.name).join(', ')}`)
      if (first) location.hash = `#/workflows/${q(first.metadata.namespace)}/${q(first.metadata.name)}`
    } catch (err) {
      toast(`Submit failed: ${err.message}${err.problems.length ? ' - ' + err.problems.join('; ') : ''}`, 'error')
    }
  })
  return h('details', { class: 'submit-box' }, h('summary', {}, 'Submit a workflow'), form)
}
