// A workflow's nodes drawn on a canvas: laid out by dagre (in a worker), coloured by phase, redrawn
// in place as phases change; drag to pan, wheel or +/- to zoom, click a node to select it.

import { elkLayout } from './elk-layout.js'

const DAGRE_LIMIT = 300  // nodes; larger graphs are laid out by ELK

export const PHASE_COLORS = {
  Succeeded: '#1a7f37', Running: '#0969da', Failed: '#cf222e', Error: '#a40e26', Pending: '#57606a',
  Skipped: '#6e7781', Omitted: '#6e7781', Suspended: '#9a6700',
}
const NODE_W = 170
const NODE_H = 34
const GROUP = 14

export function nodePhase(node) {
  if (node.type === 'Suspend' && node.phase === 'Running') return 'Suspended'
  return node.phase || 'Pending'
}

// Parent -> child edges; a steps node's groups run in order, so each group's steps lead to the next
// group (the runner records every group as a child of the steps node).
export function graphEdges(nodes) {
  const edges = []
  for (const [id, node] of Object.entries(nodes)) {
    const children = (node.children || []).filter(c => nodes[c])
    const groups = node.type === 'Steps' && children.length > 1 && children.every(c => nodes[c].type === 'StepGroup')
    if (!groups) { for (const c of children) edges.push([id, c]); continue }
    edges.push([id, children[0]])
    for (let i = 0; i + 1 < children.length; i++) {
      const steps = (nodes[children[i]].children || []).filter(c => nodes[c])
      if (!steps.length) edges.push([children[i], children[i + 1]])
      for (const step of steps) edges.push([step, children[i + 1]])
    }
  }
  return edges
}

function isGroup(node) { return node.type === 'StepGroup' || node.type === 'TaskGroup' }

export class Graph {
  constructor(canvas, { onSelect = () => {}, onDrawn = () => {}, onError = () => {} } = {}) {
    this.canvas = canvas
    this.onError = onError
    this.onSelect = onSelect
    this.onDrawn = onDrawn
    this.nodes = {}
    this.layout = null
    this.key = ''
    this.selected = null
    this.view = { x: 0, y: 0, k: 1 }
    this.worker = new Worker(new URL('./layout-worker.js', import.meta.url), { type: 'module' })
    this.worker.onmessage = ({ data }) => this._laidOut(data)
    this._bind()
    this._resize = () => this.draw()
    window.addEventListener('resize', this._resize)
  }

  _laidOut(data) {
    if (data.key !== this.key) return  // an older layout
    this.layout = data
    this.fit()
    this.draw()
  }

  destroy() {
    this.worker.terminate()
    window.removeEventListener('resize', this._resize)
  }

  update(nodes) {
    this.nodes = nodes || {}
    const ids = Object.keys(this.nodes).sort()
    const key = ids.join('\n') + '|' + ids.map(id => (this.nodes[id].children || []).join(',')).join(';')
    if (key !== this.key) {
      this.key = key
      const edges = graphEdges(this.nodes)
      const graph = {
        key,
        nodes: ids.map(id => isGroup(this.nodes[id]) ? { id, w: GROUP, h: GROUP } : { id, w: NODE_W, h: NODE_H }),
        edges,
      }
      if (ids.length > DAGRE_LIMIT) elkLayout(graph).then(data => this._laidOut(data)).catch(err => this.onError(err))
      else this.worker.postMessage(graph)
    } else {
      this.draw()
    }
  }

  select(id) {
    this.selected = id
    this.draw()
  }

  fit() {
    if (!this.layout) return
    const { width, height } = this.canvas.getBoundingClientRect()
    const k = Math.min(1, width / (this.layout.width || 1), height / (this.layout.height || 1))
    this.view = { k: Math.max(k, 0.05), x: (width - this.layout.width * Math.max(k, 0.05)) / 2, y: 10 }
  }

  zoom(factor, cx, cy) {
    const { k } = this.view
    const next = Math.min(4, Math.max(0.02, k * factor))
    this.view.x = cx - (cx - this.view.x) * (next / k)
    this.view.y = cy - (cy - this.view.y) * (next / k)
    this.view.k = next
    this.draw()
  }

  draw() {
    const canvas = this.canvas
    const ratio = window.devicePixelRatio || 1
    const { width, height } = canvas.getBoundingClientRect()
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio)
      canvas.height = Math.round(height * ratio)
    }
    const ctx = canvas.getContext('2d')
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
    ctx.clearRect(0, 0, width, height)
    if (!this.layout) return
    const { x, y, k } = this.view
    ctx.setTransform(ratio * k, 0, 0, ratio * k, ratio * x, ratio * y)
    const left = -x / k, top = -y / k, right = left + width / k, bottom = top + height / k
    ctx.strokeStyle = '#8c959f'
    ctx.lineWidth = 1 / Math.max(k, 0.5)
    ctx.beginPath()
    for (const points of this.layout.edges) {
      ctx.moveTo(points[0][0], points[0][1])
      for (let i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1])
    }
    ctx.stroke()
    const showText = k > 0.35
    ctx.font = '12px system-ui, sans-serif'
    ctx.textBaseline = 'middle'
    let drawn = 0
    for (const [id, box] of Object.entries(this.layout.nodes)) {
      const node = this.nodes[id]
      if (!node) continue
      if (box.x + box.w / 2 < left || box.x - box.w / 2 > right || box.y + box.h / 2 < top || box.y - box.h / 2 > bottom) continue
      drawn++
      ctx.fillStyle = PHASE_COLORS[nodePhase(node)] || PHASE_COLORS.Pending
      if (isGroup(node)) {
        ctx.beginPath()
        ctx.arc(box.x, box.y, GROUP / 2, 0, Math.PI * 2)
        ctx.fill()
      } else {
        ctx.beginPath()
        ctx.roundRect(box.x - box.w / 2, box.y - box.h / 2, box.w, box.h, 6)
        ctx.fill()
        if (showText) {
          ctx.fillStyle = '#ffffff'
          const label = node.displayName || node.name || id
          ctx.fillText(label.length > 24 ? label.slice(0, 23) + '…' : label, box.x - box.w / 2 + 8, box.y)
        }
      }
      if (id === this.selected) {
        ctx.strokeStyle = '#1f2328'
        ctx.lineWidth = 3 / Math.max(k, 0.3)
        ctx.strokeRect(box.x - box.w / 2 - 3, box.y - box.h / 2 - 3, box.w + 6, box.h + 6)
        ctx.strokeStyle = '#8c959f'
        ctx.lineWidth = 1 / Math.max(k, 0.5)
      }
    }
    canvas.dataset.drawn = String(Object.keys(this.layout.nodes).length)
    this.onDrawn(drawn)
  }

  hit(px, py) {
    if (!this.layout) return null
    const gx = (px - this.view.x) / this.view.k, gy = (py - this.view.y) / this.view.k
    for (const [id, b] of Object.entries(this.layout.nodes)) {
      if (Math.abs(gx - b.x) <= b.w / 2 + 2 && Math.abs(gy - b.y) <= b.h / 2 + 2) return id
    }
    return null
  }

  _bind() {
    const c = this.canvas
    let drag = null
    c.addEventListener('pointerdown', e => { drag = { x: e.clientX, y: e.clientY, moved: false }; c.setPointerCapture(e.pointerId) })
    c.addEventListener('pointermove', e => {
      if (!drag) return
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true
      if (drag.moved) {
        this.view.x += dx; this.view.y += dy
        drag.x = e.clientX; drag.y = e.clientY
        this.draw()
      }
    })
    c.addEventListener('pointerup', e => {
      if (drag && !drag.moved) {
        const r = c.getBoundingClientRect()
        const id = this.hit(e.clientX - r.left, e.clientY - r.top)
        if (id) this.onSelect(id)
      }
      drag = null
    })
    c.addEventListener('wheel', e => {
      e.preventDefault()
      const r = c.getBoundingClientRect()
      this.zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top)
    }, { passive: false })
    c.addEventListener('keydown', e => {
      const r = c.getBoundingClientRect()
      const step = 40
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }
      if (moves[e.key]) { this.view.x += moves[e.key][0]; this.view.y += moves[e.key][1]; this.draw() }
      else if (e.key === '+' || e.key === '=') this.zoom(1.2, r.width / 2, r.height / 2)
      else if (e.key === '-') this.zoom(1 / 1.2, r.width / 2, r.height / 2)
      else if (e.key === '0') { this.fit(); this.draw() }
      else return
      e.preventDefault()
    })
  }
}
