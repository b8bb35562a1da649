// Lays out a workflow's node graph with dagre off the main thread (graphs up to DAGRE_LIMIT nodes; larger
// ones go to ELK, elk-layout.js, which runs in a worker of its own).
import dagre from '@dagrejs/dagre'

function withDagre(data) {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 40, marginx: 20, marginy: 20 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of data.nodes) g.setNode(n.id, { width: n.w, height: n.h })
  for (const [a, b] of data.edges) g.setEdge(a, b)
  dagre.layout(g)
  const nodes = {}
  for (const id of g.nodes()) {
    const n = g.node(id)
    nodes[id] = { x: n.x, y: n.y, w: n.width, h: n.height }
  }
  const edges = g.edges().map(e => g.edge(e).points.map(p => [p.x, p.y]))
  const { width, height } = g.graph()
  return { nodes, edges, width, height }
}

self.onmessage = ({ data }) => {
  self.postMessage({ key: data.key, ...withDagre(data) })
}
