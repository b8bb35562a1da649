// Environments: what each runs (commit, subject, author), its phase and why, the last syncs' plans and
// diffs, problems with file and line; sync now, pause and resume.
import { call, q } from '../api.js'
import { ago, clear, h, phaseBadge, problemText, toast } from '../dom.js'
import { watch } from '../stream.js'
import { action, heading, liveState } from './common.js'

const HISTORY_SHOWN = 5

export function environmentsPage(main) {
  document.title = 'Environments - reconciler'
  const live = h('span', { class: 'live', role: 'status' }, 'Connecting…')
  const list = h('div', { class: 'cards', id: 'environments' })
  const note = h('p', { class: 'muted', id: 'sync-note' })
  main.append(heading('Environments', live), note, list)
  const envs = new Map()
  let pausable = false  // whether this daemon's API has PUT /api/v1/sync/environments/{env}/suspend
  call('GET', '/api/v1/openapi.json').then(doc => {
    pausable = '/api/v1/sync/environments/{env}/suspend' in ((doc && doc.paths) || {})
    render()
  }).catch(() => {})

  call('GET', '/api/v1/sync/status').then(s => {
    note.textContent = !s.syncing ? 'This daemon syncs no repository (start it with --repo).'
      : s.lastError ? `Last sync pass error: ${s.lastError}` : ''
  }).catch(() => {})

  function render() {
    clear(list)
    if (!envs.size) list.append(h('p', { class: 'muted' }, 'No environment has been synced yet.'))
    for (const env of [...envs.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      list.append(card(env, pausable))
    }
  }

  const stream = watch('/api/v1/environment-events', {
    onEvents(events) {
      for (const { type, object } of events) {
        if (type === 'DELETED') envs.delete(object.metadata.name)
        else envs.set(object.metadata.name, object)
      }
      render()
    },
    onReset() { envs.clear() },
    onState: liveState(live),
  })
  render()
  return () => stream.close()
}

function card(env, pausable) {
  const name = env.metadata.name
  const spec = env.spec || {}
  const status = env.status || {}
  const info = status.appliedCommitInfo || {}
  const suspended = spec.suspend === true
  const problems = status.problems || []
  const warnings = status.warnings || []
  const history = (status.history || []).slice(-HISTORY_SHOWN).reverse()
  const titleId = `env-${name}`
  return h('section', { class: 'card', 'aria-labelledby': titleId, dataset: { env: name } },
    h('h2', { id: titleId }, name, ' ', phaseBadge(status.phase || 'Unknown'),
      suspended ? h('span', { class: 'badge phase-suspended' }, 'Paused') : ''),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Branch'), h('dd', {}, spec.branch || ''),
      h('dt', {}, 'Namespace'), h('dd', {}, spec.namespace || ''),
      h('dt', {}, 'Applied commit'), h('dd', {}, h('code', {}, (status.appliedCommit || 'none').slice(0, 12)),
        info.message ? ` ${info.message}` : '', info.author ? h('span', { class: 'muted' }, ` by ${info.author}`) : ''),
      h('dt', {}, 'Git head'), h('dd', {}, h('code', {}, (status.head || '').slice(0, 12))),
      h('dt', {}, 'Last sync'), h('dd', {}, status.lastSyncTime ? `${ago(status.lastSyncTime)} (${status.lastSyncTime})` : 'never'),
      h('dt', {}, 'Reason'), h('dd', { class: 'reason' }, [status.reason, status.message].filter(Boolean).join(': ')),
      suspended ? [h('dt', {}, 'Paused'), h('dd', {}, spec.suspendReason || `since ${spec.suspendedAt || ''}`)] : ''),
    problems.length ? h('div', { class: 'problems', role: 'group', 'aria-label': `Problems of ${name}` },
      h('h3', {}, 'Problems'), h('ul', {}, problems.map(p => h('li', { class: 'problem' }, problemText(p))))) : '',
    warnings.length ? h('div', { class: 'warnings' },
      h('h3', {}, 'Policy warnings'), h('ul', {}, warnings.map(p => h('li', {}, problemText(p))))) : '',
    h('div', { class: 'buttons' },
      h('button', {
        type: 'button',
        onclick: async e => {
          e.target.disabled = true
          try {
            const r = await call('POST', `/api/v1/sync?wait=true&env=${q(name)}`)
            toast(r.error ? `Sync of ${name}: ${r.error}` : `Synced ${name}`, r.error ? 'error' : 'info')
          } catch (err) { toast(`Sync of ${name} failed: ${err.message}`, 'error') }
          e.target.disabled = false
        },
      }, 'Sync now'),
      !pausable ? '' : suspended
        ? action('Resume sync', { path: `/api/v1/sync/environments/${q(name)}/resume`, body: `Sync ${name} again from git?` })
        : action('Pause sync', { path: `/api/v1/sync/environments/${q(name)}/suspend`, payload: {},
          body: `Stop syncing ${name} until resumed? Workflows already there keep running.` })),
    h('details', { class: 'history' },
      h('summary', {}, `Recent syncs (${(status.history || []).length})`),
      history.length ? h('ol', {}, history.map(entry => h('li', {},
        h('p', {}, phaseBadge(entry.phase), ` ${entry.time} `, h('code', {}, (entry.commit || '').slice(0, 12)),
          ` ${entry.reason || ''}${entry.message ? ': ' + entry.message : ''}`),
        entry.plan ? h('p', { class: 'muted' }, entry.plan.summary || '') : '',
        (entry.plan && entry.plan.changes || []).map(c => h('details', { class: 'change' },
          h('summary', {}, `${{ create: '+', update: '~', delete: '-' }[c.action] || c.action} ${c.kind} ${c.namespace}/${c.name}: ${c.reason}${c.path ? ` (${c.path})` : ''}`),
          c.diff ? h('pre', { class: 'diff' }, c.diff) : ''))))) : h('p', { class: 'muted' }, 'No sync recorded.')))
}
