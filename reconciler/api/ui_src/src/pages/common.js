import { call } from '../api.js'
import { confirmDialog, h, toast } from '../dom.js'

// A button that asks first, then calls the API and reports the outcome.
export function action(label, { title, body, method = 'PUT', path, payload, done, danger = false }) {
  return h('button', {
    type: 'button', class: danger ? 'danger' : '',
    onclick: async () => {
      const extra = typeof body === 'function' ? body() : body
      if (!await confirmDialog(title || `${label}?`, extra || `${label}: are you sure?`, label)) return
      try {
        const result = await call(method, typeof path === 'function' ? path() : path,
          typeof payload === 'function' ? payload() : payload)
        toast(`${label}: done`)
        if (done) done(result)
      } catch (err) {
        toast(`${label} failed: ${err.message}${err.problems && err.problems.length ? ' - ' + err.problems.join('; ') : ''}`, 'error')
      }
    },
  }, label)
}

export function liveState(el) {
  return (state, message = '') => {
    el.textContent = state === 'open' ? 'Live' : state === 'error' ? `Error: ${message}` : 'Reconnecting…'
    el.dataset.state = state
  }
}

export function heading(text, live) {
  return h('div', { class: 'heading' }, h('h1', {}, text), live || '')
}
