"""The store contract: one suite, run unchanged against every backend (tests/store_backends.py): SQLite on
a real file, and KubernetesStore through the official client over real HTTP to the API-server double
(and a real cluster with `pytest -m cluster`). What only one backend promises is tested in that
backend's own file (test_store.py for SQLite, test_store_kubernetes.py)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path

import pytest

from reconciler.store import AlreadyExists, Conflict, NotFound, ObjectStore, StoreError

from .store_backends import BACKENDS, backend, node, wf


@pytest.fixture(params=BACKENDS)
def backend_name(request) -> str:
    return request.param


@pytest.fixture
def store(backend_name: str, tmp_path: Path):
    with backend(backend_name, tmp_path) as s:
        yield s


def test_create_fills_metadata_and_get_returns_it(store: ObjectStore) -> None:
    given_obj = wf(namespace=None)
    created = store.create(given_obj)
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert uuid.UUID(meta["uid"]).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert "namespace" not in given_obj["metadata"], "create must not modify the caller's object"
    assert store.get("Workflow", "default", "wf") == created


def test_returned_objects_are_private_copies(store: ObjectStore) -> None:
    obj = wf(nodes={"n1": node(1)})
    created = store.create(obj)
    obj["spec"]["entrypoint"] = "changed-after-create"
    created["status"]["nodes"]["n1"]["phase"] = "changed-in-result"
    got = store.get("Workflow", "default", "wf")
    got["spec"]["entrypoint"] = "changed-in-get-result"
    again = store.get("Workflow", "default", "wf")
    assert again["spec"]["entrypoint"] == "main"
    assert again["status"]["nodes"]["n1"]["phase"] == "Running"


def test_resource_versions_increase_store_wide(store: ObjectStore) -> None:
    a = store.create(wf("a"))
    b = store.create({"apiVersion": "v1", "kind": "CronWorkflow", "metadata": {"name": "c"}, "spec": {}})
    c = store.patch("Workflow", "default", "a", {"spec": {"x": 1}})
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, b, c)]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_get_missing_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        store.get("Workflow", "default", "nope")


def test_list_by_namespace_and_labels_sorted(store: ObjectStore) -> None:
    store.create(wf("b", "prod", labels={"team": "ml", "tier": "1"}))
    store.create(wf("a", "prod", labels={"team": "etl"}))
    store.create(wf("z", "dev", labels={"team": "ml"}))
    store.create({"apiVersion": "v1", "kind": "WorkflowTemplate", "metadata": {"name": "t", "namespace": "dev"}})

    def names(objs: list[dict]) -> list[tuple[str, str]]:
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs]

    assert names(store.list("Workflow")) == [("dev", "z"), ("prod", "a"), ("prod", "b")]
    assert names(store.list("Workflow", "prod")) == [("prod", "a"), ("prod", "b")]
    assert names(store.list("Workflow", labels={"team": "ml"})) == [("dev", "z"), ("prod", "b")]
    assert names(store.list("Workflow", "prod", {"team": "ml", "tier": "1"})) == [("prod", "b")]
    assert store.list("Workflow", labels={"team": "ml", "tier": "2"}) == []
    assert names(store.list("WorkflowTemplate")) == [("dev", "t")]


def test_generate_name(store: ObjectStore) -> None:
    names = {store.create(wf(None, generateName="etl-"))["metadata"]["name"] for _ in range(20)}
    assert len(names) == 20
    assert all(re.fullmatch(r"etl-[a-z0-9]{5}", n) for n in names)


def test_already_exists_is_per_kind_and_namespace(store: ObjectStore) -> None:
    store.create(wf("x"))
    with pytest.raises(AlreadyExists):
        store.create(wf("x"))
    store.create(wf("x", "other"))
    store.create({"apiVersion": "v1", "kind": "CronWorkflow", "metadata": {"name": "x"}})


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "Workflow", "metadata": {"name": "x"}},
        {"apiVersion": "v1", "metadata": {"name": "x"}},
        {"apiVersion": "v1", "kind": "Workflow", "metadata": {}},
        {"apiVersion": "v1", "kind": "Workflow", "metadata": {"name": "x"}, "spec": {"when": object()}},
    ],
)
def test_create_rejects_incomplete_or_non_json_objects(store: ObjectStore, bad: dict) -> None:
    with pytest.raises(StoreError):
        store.create(bad)


def test_cluster_scoped_kind_lives_in_empty_namespace(store: ObjectStore) -> None:
    tmpl = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterWorkflowTemplate",
            "metadata": {"name": "shared", "namespace": "prod"}, "spec": {}}
    assert store.create(tmpl)["metadata"]["namespace"] == ""
    assert store.get("ClusterWorkflowTemplate", "", "shared")["metadata"]["name"] == "shared"
    assert [o["metadata"]["name"] for o in store.list("ClusterWorkflowTemplate")] == ["shared"]
    store.delete("ClusterWorkflowTemplate", "", "shared")
    with pytest.raises(NotFound):
        store.get("ClusterWorkflowTemplate", "", "shared")


def test_update_compare_and_swap(store: ObjectStore) -> None:
    first = store.create(wf())
    fresh = dict(first, spec={"entrypoint": "other"})
    second = store.update(fresh)
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    with pytest.raises(Conflict):
        store.update(dict(first, spec={"entrypoint": "stale"}))
    assert store.get("Workflow", "default", "wf")["spec"] == {"entrypoint": "other"}
    # Without a resourceVersion the update is unconditional, as in Kubernetes.
    blind = wf()
    blind["spec"] = {"entrypoint": "blind"}
    assert store.update(blind)["spec"] == {"entrypoint": "blind"}
    with pytest.raises(NotFound):
        store.update(wf("missing"))


def test_patch_is_json_merge_patch(store: ObjectStore) -> None:
    obj = wf()
    obj["metadata"]["labels"] = {"a": "1", "b": "2"}
    obj["spec"] = {"entrypoint": "main", "arguments": {"parameters": [{"name": "p", "value": "1"}]},
                   "nested": {"keep": True, "drop": 1}}
    store.create(obj)
    patched = store.patch("Workflow", "default", "wf", {
        "metadata": {"labels": {"b": None, "c": "3"}},
        "spec": {"arguments": {"parameters": [{"name": "q"}]}, "nested": {"drop": None, "new": {"x": None}}},
    })
    assert patched["metadata"]["labels"] == {"a": "1", "c": "3"}
    assert patched["spec"] == {"entrypoint": "main", "arguments": {"parameters": [{"name": "q"}]},
                               "nested": {"keep": True, "new": {}}}
    assert patched["metadata"]["generation"] == 2
    assert store.get("Workflow", "default", "wf") == patched


def test_patch_cannot_rename_or_reidentify(store: ObjectStore) -> None:
    created = store.create(wf())
    patched = store.patch("Workflow", "default", "wf", {"kind": "Other", "metadata": {
        "name": "renamed", "namespace": "elsewhere", "uid": "forged"}})
    assert (patched["kind"], patched["metadata"]["name"], patched["metadata"]["namespace"]) == (
        "Workflow", "wf", "default")
    assert patched["metadata"]["uid"] == created["metadata"]["uid"]


def test_patch_compare_and_swap(store: ObjectStore) -> None:
    rv = store.create(wf())["metadata"]["resourceVersion"]
    newer = store.patch("Workflow", "default", "wf", {"status": {"phase": "Running"}}, resource_version=rv)
    with pytest.raises(Conflict):
        store.patch("Workflow", "default", "wf", {"status": {"phase": "Failed"}}, resource_version=rv)
    with pytest.raises(Conflict):  # metadata.resourceVersion in the patch is a precondition as well
        store.patch("Workflow", "default", "wf", {"metadata": {"resourceVersion": rv}})
    assert store.get("Workflow", "default", "wf")["status"]["phase"] == "Running"
    light = store.patch("Workflow", "default", "wf", {"status": {"phase": "Succeeded"}},
                        resource_version=newer["metadata"]["resourceVersion"], return_object=False)
    assert set(light) == {"apiVersion", "kind", "metadata"}
    assert light["metadata"]["resourceVersion"] == store.get("Workflow", "default", "wf")["metadata"][
        "resourceVersion"]
    with pytest.raises(NotFound):
        store.patch("Workflow", "default", "missing", {"spec": {}})


def test_watch_since_replays_history_and_none_means_from_now(store: ObjectStore) -> None:
    first = store.create(wf("a"))
    store.create(wf("b"))
    now = store.watch(timeout=0.3)
    store.create(wf("c"))
    assert [e["object"]["metadata"]["name"] for e in now] == ["c"]
    replay = store.watch(since=first["metadata"]["resourceVersion"], timeout=0.3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in replay] == [("ADDED", "b"), ("ADDED", "c")]




def test_update_keeps_identity_and_counts_generation_on_spec_changes(store: ObjectStore) -> None:
    created = store.create(wf())
    forged = dict(created, metadata={**created["metadata"], "uid": "forged", "creationTimestamp": "1999"})
    updated = store.update(forged)
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    updated["spec"]["entrypoint"] = "other"
    assert store.update(updated)["metadata"]["generation"] > created["metadata"]["generation"]


def test_delete_with_precondition(store: ObjectStore) -> None:
    rv = store.create(wf(nodes={"n1": node(1)}))["metadata"]["resourceVersion"]
    store.patch("Workflow", "default", "wf", {"status": {"phase": "Succeeded"}})
    with pytest.raises(Conflict):
        store.delete("Workflow", "default", "wf", resource_version=rv)
    assert store.get("Workflow", "default", "wf")["status"]["phase"] == "Succeeded"
    store.delete("Workflow", "default", "wf")
    with pytest.raises(NotFound):
        store.get("Workflow", "default", "wf")
    with pytest.raises(NotFound):
        store.delete("Workflow", "default", "wf")
    store.create(wf())  # the name is free again


def test_own_kinds_keep_spec_and_status_in_one_call(store: ObjectStore) -> None:
    """Environment and Lock have the status subresource on Kubernetes; callers still write both at once."""
    env = store.create({"apiVersion": "reconciler.io/v1", "kind": "Environment",
                        "metadata": {"name": "dev", "namespace": "dev"}, "spec": {"branch": "dev"},
                        "status": {"phase": "Pending"}})
    assert env["status"] == {"phase": "Pending"}
    patched = store.patch("Environment", "dev", "dev", {"spec": {"branch": "main"}, "status": {"phase": "Synced"}},
                          resource_version=env["metadata"]["resourceVersion"])
    assert (patched["spec"]["branch"], patched["status"]["phase"]) == ("main", "Synced")
    patched["status"]["phase"] = "Failed"
    updated = store.update(patched)
    assert store.get("Environment", "dev", "dev")["status"]["phase"] == "Failed"
    with pytest.raises(Conflict):
        store.patch("Environment", "dev", "dev", {"status": {"phase": "Stale"}},
                    resource_version=env["metadata"]["resourceVersion"])
    assert store.get("Environment", "dev", "dev") == updated


def test_watch_from_a_version_sees_each_change_in_order(store: ObjectStore) -> None:
    start = store.create(wf("first"))["metadata"]["resourceVersion"]
    events = store.watch("Workflow", "default", since=start, timeout=3)

    def write() -> None:
        store.create(wf(nodes={"n1": node(1)}))
        store.create(wf("elsewhere", "prod"))   # filtered out by namespace
        store.create({"apiVersion": "v1", "kind": "CronWorkflow", "metadata": {"name": "c"}})  # by kind
        time.sleep(0.3)  # apart, so that no backend may coalesce them
        store.patch("Workflow", "default", "wf", {"status": {"nodes": {"n1": {"phase": "Succeeded"}}}})
        time.sleep(0.3)
        store.delete("Workflow", "default", "wf")

    thread = threading.Thread(target=write)
    thread.start()
    seen = [next(events) for _ in range(3)]
    thread.join()
    events.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "wf"), ("MODIFIED", "wf"), ("DELETED", "wf")]
    assert seen[1]["object"]["status"]["nodes"]["n1"]["phase"] == "Succeeded"
    assert seen[2]["object"]["status"]["nodes"]["n1"]["phase"] == "Succeeded", "DELETED keeps the last body"
    assert seen[0]["object"]["apiVersion"] == "argoproj.io/v1alpha1"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions) and versions[0] > int(start)


def test_watch_without_a_version_starts_now(store: ObjectStore) -> None:
    store.create(wf("before"))
    events = store.watch("Workflow", timeout=1)
    store.create(wf("after"))
    assert [e["object"]["metadata"]["name"] for e in events] == ["after"]


def test_changes_report_keys_and_a_cursor(store: ObjectStore) -> None:
    cursor = store.current_version()
    store.create(wf("a"))
    store.patch("Workflow", "default", "a", {"spec": {"x": 1}})
    store.create(wf("b", "prod"))
    changes, cursor = store.changes(cursor, "Workflow")
    assert {(c.namespace, c.name) for c in changes} == {("default", "a"), ("prod", "b")}
    assert all(c.kind == "Workflow" for c in changes)
    assert store.changes(cursor, "Workflow")[0] == []


def test_watch_too_old_resource_version_is_a_conflict(backend_name: str, tmp_path: Path) -> None:
    with backend(backend_name, tmp_path, history=10) as store:
        first = store.create(wf())["metadata"]["resourceVersion"]
        for i in range(200):
            store.patch("Workflow", "default", "wf", {"status": {"i": i}})
        with pytest.raises(Conflict, match="too old"):
            list(store.watch("Workflow", since=first, timeout=1))
        recent = int(store.get("Workflow", "default", "wf")["metadata"]["resourceVersion"]) - 1
        assert [e["object"]["status"]["i"] for e in store.watch("Workflow", since=str(recent), timeout=0.5)] == [199]


def test_a_workflow_larger_than_etcd_allows_round_trips(store: ObjectStore) -> None:
    # ~3 MiB of node status: twice what etcd takes in one object; random text does not compress well.
    nodes = {f"n{i}": {**node(i), "message": uuid.uuid4().hex * 12} for i in range(8000)}
    store.create(wf(nodes=nodes))
    got = store.get("Workflow", "default", "wf")
    assert got["status"]["nodes"] == nodes and "compressedNodes" not in got["status"]
    store.patch("Workflow", "default", "wf", {"status": {"nodes": {"n5": {"phase": "Succeeded"}, "n6": None}}})
    nodes["n5"]["phase"] = "Succeeded"
    del nodes["n6"]
    assert store.get("Workflow", "default", "wf")["status"]["nodes"] == nodes


def test_threads_compare_and_swap_to_an_exact_total(store: ObjectStore) -> None:
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"}, "data": {"n": "0"}})

    def bump(times: int) -> None:
        done = 0
        while done < times:
            current = store.get("ConfigMap", "default", "counter")
            current["data"]["n"] = str(int(current["data"]["n"]) + 1)
            try:
                store.update(current)
                done += 1
            except Conflict:
                continue

    threads = [threading.Thread(target=bump, args=(15,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("ConfigMap", "default", "counter")["data"]["n"] == "60"


def test_lease_has_one_holder_at_a_time(store: ObjectStore) -> None:
    from reconciler.store.leases import Lease

    now = [1000.0]
    a = Lease(store, "leader", "a", duration=15, clock=lambda: now[0])
    b = Lease(store, "leader", "b", duration=15, clock=lambda: now[0])
    assert a.try_acquire() and not b.try_acquire()
    assert b.holder() == "a"
    now[0] += 10
    assert a.renew() and not b.try_acquire()
    now[0] += 16  # a stopped renewing
    assert b.try_acquire() and not a.renew()
    assert a.holder() == "b"


def test_a_patch_must_be_a_mapping(store: ObjectStore) -> None:
    store.create(wf())
    with pytest.raises(StoreError):
        store.patch("Workflow", "default", "wf", ["not", "a", "merge", "patch"])  # type: ignore[arg-type]
    assert store.get("Workflow", "default", "wf")["spec"] == {"entrypoint": "main"}
