"""What only the Kubernetes backend promises, against the API-server double over real HTTP: the official
client reads the double's answers (discovery, typed models), retries on 429/5xx/dropped connections,
large workflows compressed as Argo does, Argo namespaces on argoproj.io, the namespaced mode, watches
that survive a dropped connection; and the double's own behaviour the sync relies on (server-side
apply with field owners, JSON patch, 422)."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from reconciler.store import Conflict, StoreError
from reconciler.store.kinds import argo_resource, custom_resource_definition
from reconciler.store.kube_client import KubeApi
from reconciler.store.kubernetes import KubernetesStore

from .kubedouble import ApiServerDouble
from .store_backends import node, wf


@pytest.fixture
def double():
    d = ApiServerDouble(bookmark_interval=0.2)
    yield d
    d.close()


@pytest.fixture
def store(double: ApiServerDouble):
    s = KubernetesStore(double.api_client(), api=KubeApi(double.api_client(), sleep=lambda _s: None))
    s.install_crds()
    yield s
    s.close()


def test_the_official_clients_read_the_double(double: ApiServerDouble, store: KubernetesStore) -> None:
    api = double.api_client()
    # Discovery, as kubectl and the dynamic client do it, finds the installed CRDs and their /status.
    resources = dynamic.DynamicClient(api).resources
    envs = resources.get(api_version="reconciler.io/v1alpha1", kind="Environment")
    assert envs.namespaced and envs.subresources.get("status") is not None
    store.create(wf("hello", "team-a"))
    listed = resources.get(api_version="reconciler.io/v1alpha1", kind="Workflow").get(namespace="team-a")
    assert [item.metadata.name for item in listed.items] == ["hello"]
    # Typed models: the client deserialises namespaces, leases and config maps strictly.
    names = {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
    assert {"default", "team-a"} <= names
    lease = client.V1Lease(metadata=client.V1ObjectMeta(name="l"), spec=client.V1LeaseSpec(holder_identity="me"))
    client.CoordinationV1Api(api).create_namespaced_lease("default", lease)
    assert client.CoordinationV1Api(api).read_namespaced_lease("l", "default").spec.holder_identity == "me"
    with pytest.raises(ApiException) as missing:
        client.CoreV1Api(api).read_namespaced_config_map("nope", "default")
    assert missing.value.status == 404 and json.loads(missing.value.body)["reason"] == "NotFound"


def test_throttling_server_errors_and_dropped_connections_are_retried(double: ApiServerDouble,
                                                                      store: KubernetesStore) -> None:
    store.create(wf())
    double.fail_next(2, 429)
    double.fail_next(2, 503)
    double.fail_next(1, "drop")
    before = len(double.requests)
    assert store.get("Workflow", "default", "wf")["metadata"]["name"] == "wf"
    assert len(double.requests) - before == 6, "five failures, then the answer"
    double.fail_next(50, 500)
    with pytest.raises(StoreError, match="injected fault"):
        store.get("Workflow", "default", "wf")
    double.faults.clear()
    assert store.patch("Workflow", "default", "wf", {"spec": {"x": 1}})["spec"]["x"] == 1


def test_a_large_workflow_is_stored_compressed_as_argo_does(double: ApiServerDouble, store: KubernetesStore) -> None:
    nodes = {f"n{i}": {**node(i), "message": f"{i:08d}" * 40} for i in range(6000)}  # ~2.5 MiB of JSON
    raw_api = KubeApi(double.api_client())
    too_big = wf("raw", nodes=nodes)
    too_big["apiVersion"] = "reconciler.io/v1alpha1"
    with pytest.raises(StoreError, match="too large"):  # what etcd would say to the object as it is
        raw_api.request("POST", "/apis/reconciler.io/v1alpha1/namespaces/default/workflows", body=too_big)
    store.create(wf(nodes=nodes))
    stored = raw_api.request("GET", "/apis/reconciler.io/v1alpha1/namespaces/default/workflows/wf")
    assert "nodes" not in stored["status"]
    assert json.loads(gzip.decompress(base64.b64decode(stored["status"]["compressedNodes"]))) == nodes
    assert store.get("Workflow", "default", "wf")["status"]["nodes"] == nodes
    brief = store.list_brief("Workflow")
    assert "nodes" not in brief[0]["status"] and "compressedNodes" not in brief[0]["status"]


def test_a_corrupt_compressed_field_is_a_clear_error(double: ApiServerDouble, store: KubernetesStore) -> None:
    store.create(wf())
    KubeApi(double.api_client()).request(
        "PATCH", "/apis/reconciler.io/v1alpha1/namespaces/default/workflows/wf",
        body={"status": {"compressedNodes": base64.b64encode(b"not gzip").decode()}},
        content_type="application/merge-patch+json")
    with pytest.raises(StoreError, match="compressedNodes is not gzipped JSON"):
        store.get("Workflow", "default", "wf")


def test_argo_namespaces_hold_argoproj_objects(double: ApiServerDouble) -> None:
    api = KubeApi(double.api_client())
    for kind in ("Workflow", "CronWorkflow"):
        api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    body=custom_resource_definition(argo_resource(kind)))
    store = KubernetesStore(double.api_client(), argo_namespaces=["team-argo"])
    store.install_crds()
    store.create(wf("on-argo", "team-argo"))
    store.create(wf("ours", "team-ours"))
    raw = api.request("GET", "/apis/argoproj.io/v1alpha1/namespaces/team-argo/workflows/on-argo")
    assert raw["apiVersion"] == "argoproj.io/v1alpha1"
    assert api.request("GET", "/apis/reconciler.io/v1alpha1/workflows")["items"][0]["metadata"]["name"] == "ours"
    both = store.list("Workflow")
    assert [(o["metadata"]["namespace"], o["apiVersion"]) for o in both] == [
        ("team-argo", "argoproj.io/v1alpha1"), ("team-ours", "argoproj.io/v1alpha1")]


def test_namespaced_mode_never_asks_for_the_whole_cluster(double: ApiServerDouble) -> None:
    admin = KubernetesStore(double.api_client())
    admin.install_crds()
    admin.create(wf("in-dev", "dev"))
    admin.create(wf("elsewhere", "other"))
    store = KubernetesStore(double.api_client(), namespaces=["dev"], system_namespace="recon")
    before = len(double.requests)
    assert [o["metadata"]["name"] for o in store.list("Workflow")] == ["in-dev"]
    paths = [path for _, path, _ in double.requests[before:]]
    assert paths and all("/namespaces/dev/" in p or "/namespaces/recon/" in p for p in paths), paths
    with pytest.raises(StoreError, match="not one this daemon watches"):
        store.get("Workflow", "other", "elsewhere")


def test_a_watch_resumes_after_the_connection_drops(double: ApiServerDouble, store: KubernetesStore) -> None:
    start = store.create(wf("a"))["metadata"]["resourceVersion"]
    store.create(wf("b"))
    double.fail_next(1, "drop", method="GET")  # the watch's first request
    events = store.watch("Workflow", since=start, timeout=2)
    first = next(events)
    store.create(wf("c"))
    rest = [next(events)]
    events.close()
    assert [e["object"]["metadata"]["name"] for e in [first, *rest]] == ["b", "c"]


def test_a_watch_idles_through_bookmarks_and_ends(double: ApiServerDouble, store: KubernetesStore) -> None:
    store.create(wf())
    done = threading.Event()
    seen: list = []

    def consume() -> None:
        seen.extend(store.watch("Workflow", timeout=1.0))
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    assert done.wait(30), "an idle watch must end although bookmarks keep its connection busy"
    assert seen == []
    assert any("allowWatchBookmarks=true" in path for _, path, _ in double.requests)


def test_history_compacted_under_a_watch_is_a_conflict(double: ApiServerDouble, store: KubernetesStore) -> None:
    rv = store.create(wf())["metadata"]["resourceVersion"]
    store.patch("Workflow", "default", "wf", {"spec": {"x": 1}})
    double.state.compact()
    with pytest.raises(Conflict, match="too old"):
        list(store.watch("Workflow", since=rv, timeout=1))


def test_bad_names_are_refused_with_the_servers_message(store: KubernetesStore) -> None:
    with pytest.raises(StoreError, match="lowercase RFC 1123 subdomain"):
        store.create(wf("Not_A_Name"))
    assert store.list("Workflow") == []


def test_server_side_apply_keeps_other_writers_fields(double: ApiServerDouble, store: KubernetesStore) -> None:
    api = client.CustomObjectsApi(double.api_client())
    args = ("reconciler.io", "v1alpha1", "default", "workflowtemplates", "t")
    desired = {"apiVersion": "reconciler.io/v1alpha1", "kind": "WorkflowTemplate",
               "metadata": {"name": "t", "labels": {"app": "x"}}, "spec": {"entrypoint": "main", "old": True}}
    api.patch_namespaced_custom_object(*args, desired, field_manager="reconciler",
                                       _content_type="application/apply-patch+yaml")
    # Another writer (kubectl edit, an admission controller) adds a field of its own.
    api.patch_namespaced_custom_object(*args, {"metadata": {"annotations": {"team": "ml"}}},
                                       field_manager="kubectl-edit", _content_type="application/merge-patch+json")
    # And changes one of ours: applying without force is a conflict naming the other manager.
    api.patch_namespaced_custom_object(*args, {"spec": {"entrypoint": "hacked"}}, field_manager="kubectl-edit",
                                       _content_type="application/merge-patch+json")
    desired["spec"] = {"entrypoint": "main"}  # "old" is no longer ours to keep
    with pytest.raises(ApiException) as clash:
        api.patch_namespaced_custom_object(*args, desired, field_manager="reconciler",
                                           _content_type="application/apply-patch+yaml")
    assert clash.value.status == 409 and "kubectl-edit" in json.loads(clash.value.body)["message"]
    api.patch_namespaced_custom_object(*args, desired, field_manager="reconciler", force=True,
                                       _content_type="application/apply-patch+yaml")
    live = store.get("WorkflowTemplate", "default", "t")
    assert live["spec"] == {"entrypoint": "main"}, "ours reverted, the field we stopped applying removed"
    assert live["metadata"]["annotations"] == {"team": "ml"}, "the other writer's field survives"


def test_json_patch_and_its_test_operation(double: ApiServerDouble, store: KubernetesStore) -> None:
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    core = client.CoreV1Api(double.api_client())
    core.patch_namespaced_config_map("c", "default", [{"op": "add", "path": "/data/b", "value": "2"},
                                                      {"op": "remove", "path": "/data/a"}])
    with pytest.raises(ApiException) as failed:
        core.patch_namespaced_config_map("c", "default", [{"op": "test", "path": "/data/b", "value": "9"},
                                                          {"op": "add", "path": "/data/x", "value": "lost"}])
    assert failed.value.status == 422
    assert store.get("ConfigMap", "default", "c")["data"] == {"b": "2"}


def test_a_blind_update_retries_its_race(double: ApiServerDouble, store: KubernetesStore) -> None:
    """Kubernetes needs a resourceVersion on every custom-resource update; the store's unconditional
    update reads one and retries when another writer got in between."""
    store.create(wf())
    stop = time.monotonic() + 1.0

    def writer() -> None:
        i = 0
        while time.monotonic() < stop:
            store.patch("Workflow", "default", "wf", {"status": {"i": i}})
            i += 1
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    blind = wf()
    blind["spec"] = {"entrypoint": "blind"}
    for _ in range(5):
        store.update(blind)
    thread.join()
    assert store.get("Workflow", "default", "wf")["spec"] == {"entrypoint": "blind"}


def test_brief_lists_come_from_an_informer_that_relists_after_410(double: ApiServerDouble) -> None:
    double.bookmark_interval = 3600  # no bookmarks: a reconnect resumes from the last event seen
    store = KubernetesStore(double.api_client(), api=KubeApi(double.api_client(), sleep=lambda _s: None))
    store.install_crds()
    store.create(wf("a", nodes={"n1": node(1)}))
    assert [o["metadata"]["name"] for o in store.list_brief("Workflow")] == ["a"]
    assert "nodes" not in store.list_brief("Workflow")[0]["status"]
    lists_before = sum(1 for m, p, _ in double.requests if m == "GET" and "watch=" not in p and p.startswith(
        "/apis/reconciler.io/v1alpha1/workflows"))
    store.create(wf("b", "other"))
    _wait_for(lambda: [o["metadata"]["name"] for o in store.list_brief("Workflow")] == ["a", "b"])
    assert [o["metadata"]["name"] for o in store.list_brief("Workflow", "other")] == ["b"]
    lists_after = sum(1 for m, p, _ in double.requests if m == "GET" and "watch=" not in p and p.startswith(
        "/apis/reconciler.io/v1alpha1/workflows"))
    assert lists_after == lists_before, "served from the cache, not by listing again"
    informer = next(iter(store._informers.values()))
    # The watch goes down; while it is down an object is deleted and history compacted: resuming is
    # 410 Gone, so the informer lists again and its cache loses the deleted object.
    double.fail_next(10**6, 503, method="GET")
    double.end_watches()
    _wait_for(lambda: sum(1 for m, p, _ in double.requests[-5:] if m == "GET" and "watch=true" in p) >= 2)
    store.delete("Workflow", "default", "a")
    double.state.compact()
    double.faults.clear()
    _wait_for(lambda: informer.relists >= 1)
    _wait_for(lambda: [o["metadata"]["name"] for o in store.list_brief("Workflow")] == ["b"])
    store.close()


def _wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
