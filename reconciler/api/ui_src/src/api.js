// Calls to the daemon's API with the token typed into the login page. The token lives in
// sessionStorage (this tab only, gone when it closes) and travels as a bearer header, never in a URL.

const KEY = 'reconciler.token'

export const session = {
  loggedIn: () => sessionStorage.getItem(KEY) !== null,
  token: () => sessionStorage.getItem(KEY) || '',
  login: token => sessionStorage.setItem(KEY, token),
  logout: () => sessionStorage.removeItem(KEY),
}

export class ApiError extends Error {
  constructor(status, message, problems = []) {
    super(message)
    this.status = status
    this.problems = problems
  }
}

let onUnauthorized = () => {}
export function setUnauthorizedHandler(fn) { onUnauthorized = fn }

export function authHeaders(extra = {}) {
  const token = session.token()
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra }
}

export async function call(method, path, body) {
  const headers = authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' })
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await resp.text()
  let data = null
  try { data = text ? JSON.parse(text) : null } catch { data = text }
  if (!resp.ok) {
    if (resp.status === 401) onUnauthorized()
    throw new ApiError(resp.status, (data && data.message) || `${resp.status} ${resp.statusText}`,
      (data && data.problems) || [])
  }
  return data
}

export const get = path => call('GET', path)

export function q(value) { return encodeURIComponent(value) }

// Download with the bearer header (a plain link cannot carry it): fetch, then save the blob.
export async function download(path, filename) {
  const resp = await fetch(path, { headers: authHeaders() })
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`
    try { message = (await resp.json()).message || message } catch { /* not JSON */ }
    throw new ApiError(resp.status, message)
  }
  const url = URL.createObjectURL(await resp.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10000)
}
