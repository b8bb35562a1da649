// One workflow: its node graph coloured by phase and kept live, the controls (each confirmed), and a
// node panel: logs (streamed), inputs, outputs, artifacts (download), timing, retries; a suspend node
// asks for its output parameters on resume.
import { call, download, get, q } from '../api.js'
import { between, clear, confirmDialog, duration, h, phaseBadge, toast } from '../dom.js'
import { Graph, nodePhase } from '../graph.js'
import { follow, watch } from '../stream.js'
import { action, liveState } from './common.js'

const NODE_LIST_LIMIT = 300  // rows of the node list drawn at once; the filter finds the rest
const LOG_LIMIT = 512 * 1024  // characters of log kept on screen

export function workflowPage(main, namespace, name) {
  document.title = `${name} - reconciler`
  const base = `/api/v1/workflows/${q(namespace)}/${q(name)}`
  const live = h('span', { class: 'live', role: 'status' }, 'Connecting…')
  const phase = h('span', { id: 'wf-phase' })
  const message = h('p', { class: 'muted', id: 'wf-message' })
  const controls = h('div', { class: 'buttons', role: 'group', 'aria-label': 'Workflow controls' })
  const canvas = h('canvas', { id: 'graph', tabindex: '0', role: 'img',
    'aria-label': 'Node graph. Arrow keys pan, plus and minus zoom, 0 fits. The node list beside it has every node.' })
  const nodeFilter = h('input', { id: 'node-filter', type: 'search', placeholder: 'name' })
  const nodeList = h('ul', { class: 'nodes', id: 'node-list', 'aria-label': 'Nodes' })
  const panel = h('section', { class: 'panel', id: 'node-panel', 'aria-label': 'Selected node' },
    h('p', { class: 'muted' }, 'Select a node in the graph or the list.'))
  main.append(
    h('div', { class: 'heading' }, h('h1', {}, h('a', { href: '#/workflows' }, 'Workflows'), ' / ', name, ' ', phase), live),
    h('p', { class: 'muted' }, `Namespace ${namespace}`), message, controls,
    h('div', { class: 'workflow' },
      h('div', { class: 'graph-box' }, canvas),
      h('div', { class: 'side' },
        h('label', { for: 'node-filter' }, 'Find a node'), nodeFilter, nodeList, panel)))

  let wf = null
  let selected = null
  let logs = null
  const graph = new Graph(canvas, {
    onSelect: id => selectNode(id),
    onError: err => { message.textContent = `The graph could not be laid out: ${err.message || err}` },
  })
  nodeFilter.addEventListener('input', () => renderNodeList())

  function nodes() { return ((wf && wf.status) || {}).nodes || {} }

  function renderNodeList() {
    const term = nodeFilter.value.trim().toLowerCase()
    const all = Object.values(nodes()).filter(n => n.type !== 'StepGroup' && n.type !== 'TaskGroup')
    all.sort((a, b) => (a.startedAt || '~').localeCompare(b.startedAt || '~') || a.name.localeCompare(b.name))
    const shown = all.filter(n => !term || (n.displayName || n.name).toLowerCase().includes(term)).slice(0, NODE_LIST_LIMIT)
    clear(nodeList).append(...shown.map(n => h('li', {},
      h('button', {
        type: 'button', class: `node${n.id === selected ? ' selected' : ''}`,
        dataset: { node: n.displayName || n.name, id: n.id, phase: nodePhase(n) },
        'aria-pressed': n.id === selected ? 'true' : 'false',
        onclick: () => selectNode(n.id),
      }, phaseBadge(nodePhase(n)), ' ', n.displayName || n.name))))
    if (all.length > shown.length) nodeList.append(h('li', { class: 'muted' }, `${all.length - shown.length} more: use the filter`))
  }

  function renderControls() {
    const s = (wf && wf.status) || {}
    const finished = ['Succeeded', 'Failed', 'Error'].includes(s.phase)
    const memo = h('input', { type: 'checkbox', id: 'resubmit-memoized' })
    clear(controls).append(
      action('Suspend', { path: `${base}/suspend`, body: 'No new step starts until it is resumed.' }),
      action('Resume', { path: `${base}/resume`, body: 'Resume the workflow and its suspend nodes?' }),
      action('Stop', { path: `${base}/stop`, body: 'Kill running steps, run the exit handler, end as Failed.', danger: true }),
      action('Terminate', { path: `${base}/terminate`, body: 'Kill running steps and end as Failed, without the exit handler.', danger: true }),
      finished ? action('Retry', { path: `${base}/retry`, body: 'Run the failed nodes again?' }) : '',
      action('Resubmit', {
        path: `${base}/resubmit`, body: () => h('div', {}, h('p', {}, 'Start a new workflow with the same spec.'),
          h('label', {}, memo, ' Memoized: reuse the outputs of succeeded steps')),
        payload: () => ({ memoized: memo.checked }),
        done: created => { location.hash = `#/workflows/${q(created.metadata.namespace)}/${q(created.metadata.name)}` },
      }),
      action('Delete', { method: 'DELETE', path: base, danger: true, body: `Delete ${name} with its logs and artifacts?`,
        done: () => { location.hash = '#/workflows' } }))
  }

  function selectNode(id) {
    if (selected !== id && logs) { logs.close(); logs = null }
    selected = id
    graph.select(id)
    renderNodeList()
    renderPanel(true)
  }

  function renderPanel(fresh = false) {
    const n = nodes()[selected]
    if (!n) return
    if (!fresh && panel.dataset.node === selected) {  // keep the log view; refresh the facts
      const facts = panel.querySelector('.node-facts')
      if (facts) facts.replaceWith(nodeFacts(n))
      const resume = panel.querySelector('.resume-node')
      if (resume && nodePhase(n) !== 'Suspended') resume.remove()
      return
    }
    panel.dataset.node = selected
    const logBox = h('pre', { class: 'logs', id: 'node-logs', tabindex: '0', role: 'log', 'aria-label': 'Logs' })
    clear(panel).append(
      h('h2', {}, n.displayName || n.name, ' ', phaseBadge(nodePhase(n))),
      nodeFacts(n),
      nodePorts(n, namespace, name),
      nodePhase(n) === 'Suspended' ? resumeForm(n) : '',
      n.type === 'Pod' ? h('div', { class: 'buttons' }, h('button', {
        type: 'button', id: 'show-logs',
        onclick: () => {
          if (logs) logs.close()
          logBox.textContent = ''
          logs = follow(`${base}/log?node=${q(n.id)}&follow=true`, text => {
            logBox.textContent = (logBox.textContent + text).slice(-LOG_LIMIT)
            logBox.scrollTop = logBox.scrollHeight
          }, error => { if (error) logBox.append(`\n[${error}]`) })
        },
      }, 'Logs')) : '',
      n.type === 'Pod' ? logBox : '')
  }

  function resumeForm(n) {
    const template = ((wf.spec || {}).templates || []).find(t => t.name === n.templateName) || {}
    const supplied = ((template.outputs || {}).parameters || []).filter(p => p.valueFrom && 'supplied' in p.valueFrom)
    const inputs = supplied.map(p => h('input', { id: `param-${p.name}`, name: p.name, value: (p.valueFrom || {}).default || '' }))
    return h('form', {
      class: 'resume-node', 'aria-label': 'Resume this node',
      onsubmit: async e => {
        e.preventDefault()
        const parameters = Object.fromEntries(inputs.map(i => [i.name, i.value]))
        const body = h('p', {}, `Resume ${n.displayName || n.name}` +
          (inputs.length ? ` with ${inputs.map(i => `${i.name}=${i.value}`).join(', ')}` : '') + '?')
        if (!await confirmDialog('Resume node?', body, 'Resume')) return
        try {
          await call('PUT', `${base}/resume`, { node: n.id, parameters })
          toast(`Resumed ${n.displayName || n.name}`)
        } catch (err) { toast(`Resume failed: ${err.message}`, 'error') }
      },
    }, h('h3', {}, 'Waiting to be resumed'),
    supplied.map((p, i) => [h('label', { for: `param-${p.name}` }, p.name), inputs[i]]),
    h('button', { type: 'submit', id: 'resume-node' }, 'Resume node'))
  }

  function apply(object) {
    wf = object
    const s = wf.status || {}
    clear(phase).append(phaseBadge(s.phase))
    message.textContent = s.message || ''
    graph.update(s.nodes || {})
    renderNodeList()
    renderControls()
    if (selected) renderPanel()
  }

  get(base).then(object => { if (!wf) apply(object) })
    .catch(err => { message.textContent = err.message; live.textContent = 'Error'; live.dataset.state = 'error' })
  const stream = watch(`/api/v1/workflow-events/${q(namespace)}?listOptions.fieldSelector=${q('metadata.name=' + name)}`, {
    onEvents(events) {
      const last = events[events.length - 1]
      if (last.type === 'DELETED') { message.textContent = 'This workflow was deleted.'; return }
      apply(last.object)
    },
    onState: liveState(live),
  })
  return () => { stream.close(); graph.destroy(); if (logs) logs.close() }
}

function nodeFacts(n) {
  const rows = [
    ['Type', n.type], ['Template', n.templateName || ''], ['Phase', nodePhase(n)], ['Message', n.message || ''],
    ['Started', n.startedAt || ''], ['Finished', n.finishedAt || ''],
    ['Duration', duration(between(n.startedAt, n.finishedAt))],
    ['Retries', n.type === 'Retry' ? String(Math.max((n.children || []).length - 1, 0)) : ''],
    ['Exit code', n.outputs && n.outputs.exitCode !== undefined ? String(n.outputs.exitCode) : ''],
  ].filter(([, v]) => v !== '')
  return h('dl', { class: 'facts node-facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
}

function nodePorts(n, namespace, name) {
  const inputs = (n.inputs || {}).parameters || []
  const outputs = (n.outputs || {}).parameters || []
  const artifacts = (n.outputs || {}).artifacts || []
  const params = (title, list) => list.length ? [h('h3', {}, title), h('table', { class: 'params' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))),
    h('tbody', {}, list.map(p => h('tr', {}, h('td', {}, p.name), h('td', {}, h('code', {}, p.value ?? ''))))))] : ''
  return h('div', { class: 'ports' },
    params('Inputs', inputs), params('Outputs', outputs),
    artifacts.length ? [h('h3', {}, 'Artifacts'), h('ul', {}, artifacts.map(a => h('li', {},
      h('button', {
        type: 'button', class: 'link',
        onclick: () => download(`/artifact-files/${q(namespace)}/workflows/${q(name)}/${q(n.id)}/outputs/${q(a.name)}`,
          a.name + (a.archive === 'none' ? '' : '.tgz')).catch(err => toast(`Download failed: ${err.message}`, 'error')),
      }, `Download ${a.name}`), a.size !== undefined ? ` (${a.size} bytes)` : '')))] : '')
}
