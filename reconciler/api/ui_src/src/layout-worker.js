// Lays out a workflow's node graph with dagre off the main thread, so a 2,000-node DAG never freezes the page.
import dagre from '@dagrejs/dagre'

self.onmessage = ({ data }) => {
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
  self.postMessage({ key: data.key, nodes, edges, width, height })
}
