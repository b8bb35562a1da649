// Server-sent events read through fetch (EventSource cannot send an Authorization header, and the token
// must not go in the URL). Reconnects with Last-Event-ID; a 410 (history compacted) starts over.

import { authHeaders } from './api.js'

const RETRY_MS = 2000
const MAX_LINE = 64 * 1024 * 1024

export function watch(path, { onEvents, onReset = () => {}, onState = () => {} }) {
  let lastId = null
  let stopped = false
  let controller = null
  let timer = null

  async function connect() {
    controller = new AbortController()
    const headers = authHeaders({ Accept: 'text/event-stream' })
    if (lastId) headers['Last-Event-ID'] = lastId
    try {
      const resp = await fetch(path, { headers, signal: controller.signal })
      if (resp.status === 410) { lastId = null; onReset(); throw new Error('history compacted') }
      if (!resp.ok) {
        let message = `${resp.status}`
        try { message = (await resp.json()).message || message } catch { /* not JSON */ }
        onState('error', message)
        if (resp.status === 401 || resp.status === 403 || resp.status === 404) return  // retrying will not help
        throw new Error(message)
      }
      onState('open')
      const reader = resp.body.getReader()
      const decoder = new TextDecoder()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        if (buffer.length > MAX_LINE) throw new Error('event too large')
        const lines = buffer.split('\n')
        buffer = lines.pop()
        const events = []
        for (const line of lines) {
          if (line.startsWith('id:')) lastId = line.slice(3).trim()
          else if (line.startsWith('data:')) {
            const message = JSON.parse(line.slice(5))
            if (message.error) {
              if (message.error.code === 410) { lastId = null; onReset() }
              throw new Error(message.error.message)
            }
            events.push(message.result)
          }
        }
        if (events.length) onEvents(events)
      }
    } catch (err) {
      if (stopped) return
      onState('reconnecting', String(err && err.message || err))
    }
    if (!stopped) timer = setTimeout(connect, RETRY_MS)
  }

  connect()
  return {
    close() {
      stopped = true
      clearTimeout(timer)
      if (controller) controller.abort()
    },
  }
}

// A text stream (logs): each chunk to onText until the server ends it.
export function follow(path, onText, onEnd = () => {}) {
  const controller = new AbortController()
  ;(async () => {
    try {
      const resp = await fetch(path, { headers: authHeaders(), signal: controller.signal })
      if (!resp.ok) {
        let message = `${resp.status}`
        try { message = (await resp.json()).message || message } catch { /* not JSON */ }
        onEnd(message)
        return
      }
      const reader = resp.body.getReader()
      const decoder = new TextDecoder()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        onText(decoder.decode(value, { stream: true }))
      }
      onEnd('')
    } catch (err) {
      if (!controller.signal.aborted) onEnd(String(err.message || err))
    }
  })()
  return { close: () => controller.abort() }
}
