// The UI's shell: login, the hash router and the pages. Each page returns a cleanup function that
// closes its streams when another page opens.
import './style.css'
import { ApiError, get, session, setUnauthorizedHandler } from './api.js'
import { clear, h } from './dom.js'
import { environmentsPage } from './pages/environments.js'
import { workflowsPage } from './pages/workflows.js'
import { workflowPage } from './pages/workflow.js'
import { cronPage } from './pages/cron.js'
import { semaphoresPage } from './pages/semaphores.js'

const main = document.getElementById('main')
const top = document.getElementById('top')
let cleanup = () => {}

const routes = [
  [/^#\/environments$/, () => environmentsPage(main)],
  [/^#\/workflows$/, () => workflowsPage(main)],
  [/^#\/workflows\/([^/]+)\/([^/]+)$/, m => workflowPage(main, decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
  [/^#\/cron$/, () => cronPage(main)],
  [/^#\/semaphores$/, () => semaphoresPage(main)],
]

function loginPage(message = '') {
  top.hidden = true
  document.title = 'Log in - reconciler'
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', name: 'token' })
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' }, message)
  const form = h('form', { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'reconciler'),
    h('p', {}, 'Paste an API token of this daemon (RECONCILER_API_TOKEN or one from its tokens file). ' +
      'Leave it empty if the daemon has no token. It is kept in this tab only.'),
    h('label', { for: 'token' }, 'API token'),
    input,
    error,
    h('button', { type: 'submit' }, 'Log in'))
  form.addEventListener('submit', async e => {
    e.preventDefault()
    session.login(input.value.trim())
    try {
      await get('/api/v1/workflows?limit=1')
      if (!location.hash || location.hash === '#/login') location.hash = '#/workflows'
      route()
    } catch (err) {
      session.logout()
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'That token is not accepted.' : `Cannot log in: ${err.message}`
      input.focus()
    }
  })
  clear(main).append(form)
  input.focus()
}

function route() {
  cleanup()
  cleanup = () => {}
  if (!session.loggedIn()) { loginPage(); return }
  top.hidden = false
  const hash = location.hash || '#/workflows'
  for (const link of document.querySelectorAll('nav a')) {
    const current = hash.startsWith(link.getAttribute('href'))
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current')
  }
  for (const [pattern, page] of routes) {
    const m = hash.match(pattern)
    if (m) {
      clear(main)
      cleanup = page(m) || (() => {})
      return
    }
  }
  location.hash = '#/workflows'
}

setUnauthorizedHandler(() => {
  if (top.hidden) return  // on the login page already: it reports the refusal itself
  session.logout()
  cleanup()
  cleanup = () => {}
  loginPage('The token was refused: log in again.')
})
document.getElementById('logout').addEventListener('click', () => {
  session.logout()
  route()
})
window.addEventListener('hashchange', route)
route()
