"""DAG node links as Argo records them (workflow/controller/dag.go, operator.go getOutboundNodes):
a DAG node's `children` are its tasks without dependencies, a task node's `children` are the nodes
of the tasks depending on it (linked to its *outbound* nodes: a pod itself, a retry's last
attempt, every item of a loop, a nested template's `outboundNodes`), and the DAG node's
`outboundNodes` are its target tasks' outbound nodes. `reconciler get`'s tree still nests every
node once, by boundary."""

from __future__ import annotations

import copy

from reconciler.cli.render import node_tree, tree_children
from reconciler.engine.nodes import outbound_nodes
from reconciler.engine.resubmission import formulate_retry
from tests.test_engine_helpers import node, nodes, run

ECHO = """
  - name: echo
    container: {image: alpine, command: [sh, -c, "echo hi"]}
"""


def ids(wf: dict, *displays: str) -> list[str]:
    return [node(wf, d)["id"] for d in displays]


def kids(n: dict) -> list[str]:
    return n.get("children", [])


def test_diamond_links_tasks_to_their_dependencies(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: diamond}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: A, template: echo}}
      - {{name: B, template: echo, depends: A}}
      - {{name: C, template: echo, dependencies: [A]}}
      - {{name: D, template: echo, depends: B && C}}
{ECHO}""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    dag = node(wf, "diamond")
    a, b, c, d = ids(wf, "A", "B", "C", "D")
    assert kids(dag) == [a]
    assert set(kids(node(wf, "A"))) == {b, c} and len(kids(node(wf, "A"))) == 2
    assert kids(node(wf, "B")) == kids(node(wf, "C")) == [d]
    assert kids(node(wf, "D")) == []
    assert dag["outboundNodes"] == [d]
    # ids, names and boundaries are as before: every task belongs to the DAG node
    for display in "ABCD":
        n = node(wf, display)
        assert n["boundaryID"] == dag["id"] and n["name"] == f"diamond.{display}"


def test_dependents_of_a_loop_hang_off_every_item(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: loop-edges}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: fan, template: echo, withItems: [x, y, z]}}
      - {{name: after, template: echo, depends: fan}}
{ECHO}""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    group = node(wf, "fan")
    assert group["type"] == "TaskGroup"
    items = ids(wf, "fan(0:x)", "fan(1:y)", "fan(2:z)")
    assert kids(node(wf, "loop-edges")) == [group["id"]]
    assert kids(group) == items
    after = node(wf, "after")["id"]
    for item in items:
        assert kids(wf["status"]["nodes"][item]) == [after]
    assert after not in kids(group)
    assert node(wf, "loop-edges")["outboundNodes"] == [after]


def test_dependent_of_a_retried_task_hangs_off_the_successful_attempt(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: retry-edges}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: flaky, template: flaky}}
      - {{name: next, template: echo, depends: flaky}}
  - name: flaky
    retryStrategy: {{limit: 3}}
    container: {{image: alpine, command: [sh, -c, "[ {{{{retries}}}} -ge 1 ]"]}}
{ECHO}""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    retry = node(wf, "flaky")
    failed, ok = ids(wf, "flaky(0)", "flaky(1)")
    assert retry["type"] == "Retry" and kids(retry) == [failed, ok]
    nxt = node(wf, "next")["id"]
    assert kids(node(wf, "flaky(1)")) == [nxt]
    assert kids(node(wf, "flaky(0)")) == []
    assert nxt not in kids(retry)
    assert kids(node(wf, "retry-edges")) == [retry["id"]]


def test_dependents_of_nested_dag_and_steps_hang_off_their_outbound_nodes(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: nested-edges}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: inner-dag, template: inner-dag}}
      - {{name: inner-steps, template: inner-steps}}
      - {{name: last, template: echo, depends: inner-dag && inner-steps}}
  - name: inner-dag
    dag:
      tasks:
      - {{name: p, template: echo}}
      - {{name: q, template: echo, depends: p}}
      - {{name: r, template: echo, depends: p}}
  - name: inner-steps
    steps:
    - - {{name: s1, template: echo}}
    - - {{name: s2, template: echo}}
      - {{name: s3, template: echo}}
{ECHO}""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    q, r, s2, s3, last = ids(wf, "q", "r", "s2", "s3", "last")
    assert node(wf, "inner-dag")["outboundNodes"] == [q, r]
    assert node(wf, "inner-steps")["outboundNodes"] == [s2, s3]
    for parent in ("q", "r", "s2", "s3"):
        assert kids(node(wf, parent)) == [last]
    # the containers themselves hold their own first nodes / step groups only
    assert kids(node(wf, "inner-dag")) == ids(wf, "p")
    assert [wf["status"]["nodes"][c]["displayName"] for c in kids(node(wf, "inner-steps"))] == ["[0]", "[1]"]
    assert kids(node(wf, "nested-edges")) == ids(wf, "inner-dag", "inner-steps")
    assert node(wf, "nested-edges")["outboundNodes"] == [last]
    assert outbound_nodes(wf["status"]["nodes"], node(wf, "nested-edges")["id"]) == [last]


def test_omitted_and_skipped_tasks_are_linked_and_are_outbound_nodes(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: omitted-edges}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: A, template: echo}}
      - {{name: never, template: echo, depends: A.Failed}}
      - {{name: skip, template: echo, depends: A, when: "1 == 2"}}
      - {{name: end, template: echo, depends: never || skip}}
{ECHO}""")
    never, skip, end = ids(wf, "never", "skip", "end")
    assert node(wf, "never")["phase"] == "Omitted" and node(wf, "skip")["phase"] == "Skipped"
    assert kids(node(wf, "A")) == [never, skip]
    assert kids(node(wf, "never")) == kids(node(wf, "skip")) == [end]


def test_get_tree_nests_dag_tasks_by_boundary_once_each(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: tree-edges}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: A, template: echo}}
      - {{name: fan, template: echo, depends: A, withItems: [1, 2]}}
      - {{name: B, template: inner, depends: A}}
      - {{name: C, template: echo, depends: fan && B}}
  - name: inner
    dag:
      tasks:
      - {{name: x, template: echo}}
{ECHO}""")
    roots, tree = tree_children(wf["status"]["nodes"])
    assert [r["displayName"] for r in roots] == ["tree-edges"]
    placed = [k["id"] for ks in tree.values() for k in ks] + [r["id"] for r in roots]
    assert sorted(placed) == sorted(n["id"] for n in nodes(wf))  # every node exactly once
    under = {k: [c["displayName"] for c in v] for k, v in tree.items()}
    assert sorted(under[node(wf, "tree-edges")["id"]]) == ["A", "B", "C", "fan"]
    assert under[node(wf, "fan")["id"]] == ["fan(0:1)", "fan(1:2)"]
    assert under[node(wf, "B")["id"]] == ["x"]
    assert node(wf, "A")["id"] not in under  # a pod's dependents are not nested under it
    steps = [cell.plain for cell in node_tree(wf).columns[0]._cells]
    assert len(steps) == len(nodes(wf))
    assert [s for s in steps if s.endswith(" C")] == ["└─✔ C"]


def test_retry_keeps_succeeded_attempt_and_relinks_new_dependents(tmp_path) -> None:
    """formulate_retry keeps the attempts of a succeeded Retry node (its structural children),
    drops the failed part, and the edge from a kept node to a re-run dependent is linked again."""
    wf = run(tmp_path, f"""
metadata: {{name: retry-wf-edges}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: flaky, template: flaky}}
      - {{name: bad, template: bad, depends: flaky}}
  - name: flaky
    retryStrategy: {{limit: 2}}
    container: {{image: alpine, command: [sh, -c, "[ {{{{retries}}}} -ge 1 ]"]}}
  - name: bad
    container: {{image: alpine, command: [sh, -c, "exit 1"]}}
{ECHO}""")
    assert wf["status"]["phase"] == "Failed"
    assert kids(node(wf, "flaky(1)")) == [node(wf, "bad")["id"]]
    status = formulate_retry(copy.deepcopy(wf))
    kept = {n["displayName"] for n in status["nodes"].values()}
    assert kept == {"flaky", "flaky(0)", "flaky(1)"}  # the failed attempt is the Retry's history
    assert "children" not in status["nodes"][node(wf, "flaky(1)")["id"]]
