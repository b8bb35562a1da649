// Building DOM from data: text always goes in as text (never innerHTML), so names, messages and logs
// from workflows cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value)
    else if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key === 'text') el.textContent = value
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild)
  return el
}

const toastEl = () => document.getElementById('toast')

export function toast(message, kind = 'info') {
  const el = toastEl()
  el.textContent = message
  el.className = `show ${kind}`
  clearTimeout(toast.timer)
  toast.timer = setTimeout(() => { el.className = '' }, 6000)
}

// A modal confirmation (<dialog>); resolves true on OK. `body` is a node or text.
export function confirmDialog(title, body, okLabel = 'OK') {
  const dialog = document.getElementById('confirm')
  document.getElementById('confirm-title').textContent = title
  clear(document.getElementById('confirm-body')).append(body instanceof Node ? body : h('p', {}, body))
  document.getElementById('confirm-ok').textContent = okLabel
  dialog.returnValue = ''
  dialog.showModal()
  return new Promise(resolve => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true })
  })
}

export function phaseBadge(phase) {
  const p = phase || 'Pending'
  return h('span', { class: `badge phase-${p.toLowerCase()}`, dataset: { phase: p } }, p)
}

export function ago(ts) {
  if (!ts) return ''
  const seconds = Math.round((Date.now() - Date.parse(ts)) / 1000)
  if (Number.isNaN(seconds)) return ts
  return `${duration(Math.max(seconds, 0))} ago`
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return ''
  if (seconds < 60) return `${Math.round(seconds)}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`
}

export function between(start, end) {
  if (!start) return null
  const stop = end ? Date.parse(end) : Date.now()
  return (stop - Date.parse(start)) / 1000
}

export function problemText(p) {
  const where = [p.file, p.line].filter(x => x !== undefined && x !== null && x !== '').join(':')
  return `${where ? where + ': ' : ''}${p.field ? p.field + ': ' : ''}${p.message}`
}
