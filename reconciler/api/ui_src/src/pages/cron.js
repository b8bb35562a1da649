// Cron workflows: schedule, next fire times, last run and the workflows each has started; suspend/resume.
import { call, get, q } from '../api.js'
import { ago, clear, h, phaseBadge } from '../dom.js'
import { watch } from '../stream.js'
import { action, heading, liveState } from './common.js'

const CRON_LABEL = 'workflows.argoproj.io/cron-workflow'
const HISTORY_SHOWN = 10

export function cronPage(main) {
  document.title = 'Cron workflows - reconciler'
  const live = h('span', { class: 'live', role: 'status' }, 'Connecting…')
  const list = h('div', { class: 'cards', id: 'crons' })
  main.append(heading('Cron workflows', live), list)
  const crons = new Map()
  const nextRuns = new Map()
  let history = []

  async function refresh() {
    try { history = (await get('/api/v1/workflows')).items } catch { history = [] }
    await Promise.all([...crons.values()].map(async c => {
      try {
        const r = await call('GET', `/api/v1/cron-workflows/${q(c.metadata.namespace)}/${q(c.metadata.name)}/next-runs`)
        nextRuns.set(key(c), r.nextRuns)
      } catch (err) { nextRuns.set(key(c), [`unavailable: ${err.message}`]) }
    }))
    render()
  }

  function render() {
    clear(list)
    if (!crons.size) list.append(h('p', { class: 'muted' }, 'No cron workflows.'))
    for (const c of [...crons.values()].sort((a, b) => key(a).localeCompare(key(b)))) {
      const spec = c.spec || {}
      const status = c.status || {}
      const ns = c.metadata.namespace
      const path = `/api/v1/cron-workflows/${q(ns)}/${q(c.metadata.name)}`
      const runs = history.filter(w => w.metadata.namespace === ns && (w.metadata.labels || {})[CRON_LABEL] === c.metadata.name)
        .slice(0, HISTORY_SHOWN)
      const titleId = `cron-${ns}-${c.metadata.name}`
      list.append(h('section', { class: 'card', 'aria-labelledby': titleId, dataset: { cron: c.metadata.name } },
        h('h2', { id: titleId }, c.metadata.name, spec.suspend ? h('span', { class: 'badge phase-suspended' }, 'Suspended') : ''),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Namespace'), h('dd', {}, ns),
          h('dt', {}, 'Schedule'), h('dd', {}, h('code', {}, [spec.schedule, ...(spec.schedules || [])].filter(Boolean).join(', ')),
            spec.timezone ? ` (${spec.timezone})` : ''),
          h('dt', {}, 'Next runs'), h('dd', {}, h('ul', { class: 'plain' }, (nextRuns.get(key(c)) || []).map(t => h('li', {}, t)))),
          h('dt', {}, 'Last run'), h('dd', {}, status.lastScheduledTime ? `${ago(status.lastScheduledTime)} (${status.lastScheduledTime})` : 'never'),
          h('dt', {}, 'Active'), h('dd', {}, (status.active || []).map(r => r.name).join(', ') || 'none')),
        h('div', { class: 'buttons' }, spec.suspend
          ? action('Resume', { path: `${path}/resume`, body: `Schedule ${c.metadata.name} again?` })
          : action('Suspend', { path: `${path}/suspend`, body: `Stop scheduling ${c.metadata.name}? A later sync from git may set it back.` })),
        h('h3', {}, 'History'),
        runs.length ? h('ul', { class: 'plain' }, runs.map(w => h('li', {}, phaseBadge((w.status || {}).phase), ' ',
          h('a', { href: `#/workflows/${q(ns)}/${q(w.metadata.name)}` }, w.metadata.name), ` ${ago(w.metadata.creationTimestamp)}`)))
          : h('p', { class: 'muted' }, 'No workflows started yet.')))
    }
  }

  const stream = watch('/api/v1/cron-workflow-events', {
    onEvents(events) {
      for (const { type, object } of events) {
        if (type === 'DELETED') crons.delete(key(object)); else crons.set(key(object), object)
      }
      refresh()
    },
    onReset() { crons.clear() },
    onState: liveState(live),
  })
  render()
  return () => stream.close()
}

function key(c) { return `${c.metadata.namespace}/${c.metadata.name}` }
