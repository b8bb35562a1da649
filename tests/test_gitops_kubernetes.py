"""GitOps onto a cluster: `reconciler sync --backend kubernetes` (a real subprocess, the official client,
real HTTP) against the API-server double applies the sample repository into its three namespaces,
a second sync changes nothing, and an out-of-band edit is reverted by the next sync."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler.store.kube_client import KubeApi
from reconciler.store.kubernetes import KubernetesStore

from .conftest import ARGO_CRDS
from .kubedouble import ApiServerDouble

NAMESPACES = ("analytics-dev", "analytics-qa", "analytics-prod")


@pytest.fixture
def double():
    d = ApiServerDouble()
    yield d
    d.close()


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler.cli.main", "--backend", "kubernetes", *args],
                          env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def env(double: ApiServerDouble, tmp_path: Path) -> dict:
    env = {**os.environ, "KUBECONFIG": str(double.kubeconfig(tmp_path / "kubeconfig")),
           "RECONCILER_HOME": str(tmp_path / "home")}
    env.pop("RECONCILER_SERVER", None)
    done = _cli(env, "crds", "--apply")
    assert done.returncode == 0, done.stderr
    return env


def _managed(double: ApiServerDouble) -> dict[tuple, str]:
    """(group, plural, namespace, name) -> resourceVersion of what sync put in the environments' namespaces."""
    return {key: obj["metadata"]["resourceVersion"] for key, obj in double.state.objects.items()
            if key[2] in NAMESPACES}


def test_sync_applies_the_sample_repository_into_three_namespaces(double: ApiServerDouble, env: dict,
                                                                  tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _cli(env, "sample-repo", str(repo)).returncode == 0
    first = _cli(env, "sync", "--repo", str(repo))
    assert first.returncode == 0, first.stderr
    applied = _managed(double)
    for ns in NAMESPACES:
        kinds = sorted((g, plural, name) for g, plural, n, name in applied if n == ns)
        assert ("reconciler.io", "workflowtemplates", "common-steps") in kinds, kinds
        assert ("reconciler.io", "cronworkflows", "etl-nightly") in kinds, kinds
        assert ("", "configmaps", "reconciler-limits") in kinds, kinds
        assert ("", "namespaces", "", ns) in double.state.objects, f"{ns} was created as a cluster namespace"

    second = _cli(env, "sync", "--repo", str(repo))
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("no changes") == 3, second.stdout
    assert _managed(double) == applied, "a second sync writes nothing"

    # Someone edits a template in the cluster (kubectl edit): the next sync puts git's version back,
    # by server-side apply as field manager "reconciler", so the other writer's own fields survive.
    api = KubeApi(double.api_client())
    path = "/apis/reconciler.io/v1alpha1/namespaces/analytics-prod/workflowtemplates/common-steps"
    original = api.request("GET", path)["spec"]
    api.request("PATCH", path, query={"fieldManager": "kubectl-edit"},
                body={"spec": {"templates": [{"name": "hacked", "container": {"image": "evil"}}]},
                      "metadata": {"annotations": {"team": "ml"}}},
                content_type="application/merge-patch+json")
    third = _cli(env, "sync", "--repo", str(repo))
    assert third.returncode == 0, third.stderr
    assert "edited out of band" in third.stdout, third.stdout
    live = api.request("GET", path)
    assert live["spec"] == original, "our field is taken back"
    assert live["metadata"]["annotations"]["team"] == "ml", "the other writer's own field survives"
    fourth = _cli(env, "sync", "--repo", str(repo))
    assert fourth.stdout.count("no changes") == 3, "a field another writer owns is not drift: " + fourth.stdout
    managers = {(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]}
    assert ("reconciler", "Apply") in managers, managers
    assert any(method == "PATCH" and "fieldManager=reconciler" in url and ctype == "application/apply-patch+yaml"
               for method, url, ctype in double.requests)
    # And Kubernetes-side reads work through every command on this backend.
    listed = _cli(env, "template", "list", "-n", "analytics-prod")
    assert listed.returncode == 0 and "common-steps" in listed.stdout, listed.stderr


def test_an_unreachable_cluster_is_one_clear_line(tmp_path: Path) -> None:
    closed = ApiServerDouble()
    kubeconfig = closed.kubeconfig(tmp_path / "kubeconfig")
    closed.close()  # nothing listens there any more
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "RECONCILER_HOME": str(tmp_path / "home")}
    env.pop("RECONCILER_SERVER", None)
    done = _cli(env, "list")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "store: GET /api" in done.stderr
    assert "retrying in" in done.stderr, "each retry is said"


def _argo_schema(double: ApiServerDouble, plural: str) -> dict:
    crd = yaml.safe_load((ARGO_CRDS / f"argoproj.io_{plural}.yaml").read_text())
    KubeApi(double.api_client()).request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                         body=crd)
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _unknown_fields(obj, schema: dict, path: str = "") -> list[str]:
    """Fields a structural schema does not declare (the API server would prune them or, with strict
    field validation, refuse them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(obj, (dict, list)):
        return []
    if isinstance(obj, list):
        return [u for i, item in enumerate(obj) for u in _unknown_fields(item, schema.get("items") or {}, f"{path}[{i}]")]
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        return [u for k, v in obj.items() for u in _unknown_fields(v, extra, f"{path}.{k}")] \
            if isinstance(extra, dict) else []
    out = [f"{path}.{k}" for k in obj if k not in props]
    return out + [u for k, v in obj.items() if k in props for u in _unknown_fields(v, props[k], f"{path}.{k}")]


def _qa_on_argo(repo: Path) -> None:
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for branch in ("dev", "qa", "main"):  # each environment reads reconciler.yaml from its own branch
        subprocess.run(["git", "-C", str(repo), "checkout", "-q", branch], check=True, env=git_env)
        config = repo / "reconciler.yaml"
        config.write_text(config.read_text().replace("    namespace: analytics-qa\n",
                                                     "    namespace: analytics-qa\n    engine: argo\n"))
        subprocess.run(["git", "-C", str(repo), "commit", "-qam", "qa runs on Argo"], check=True, env=git_env)


def test_engine_argo_on_sqlite_fails_that_environment_only(tmp_path: Path) -> None:
    env = {**os.environ, "RECONCILER_HOME": str(tmp_path / "home")}
    env.pop("RECONCILER_SERVER", None)
    run = [sys.executable, "-m", "reconciler.cli.main"]
    repo = tmp_path / "repo"
    assert subprocess.run([*run, "sample-repo", str(repo)], env=env, check=False).returncode == 0
    _qa_on_argo(repo)
    done = subprocess.run([*run, "sync", "--repo", str(repo)], env=env, capture_output=True, text=True,
                          timeout=180, check=False)
    qa = [line for line in done.stdout.splitlines() if line.startswith("qa ")]
    assert qa and "Failed" in qa[0], done.stdout
    assert "engine: argo needs --backend kubernetes" in done.stdout + done.stderr
    assert "reconciler.yaml" in done.stdout + done.stderr
    assert sum(line.startswith(("dev ", "prod ")) and "Synced" in line for line in done.stdout.splitlines()) == 2


def test_an_argo_environment_is_applied_as_argo_objects_that_argos_schema_accepts(
        double: ApiServerDouble, env: dict, tmp_path: Path) -> None:
    schemas = {plural: _argo_schema(double, plural) for plural in ("workflows", "workflowtemplates", "cronworkflows")}
    repo = tmp_path / "repo"
    assert _cli(env, "sample-repo", str(repo)).returncode == 0
    _qa_on_argo(repo)
    done = _cli(env, "sync", "--repo", str(repo))
    assert done.returncode == 0, done.stdout + done.stderr

    argo = {k: o for k, o in double.state.objects.items() if k[0] == "argoproj.io"}
    assert {(plural, ns) for _, plural, ns, _ in argo} == {
        ("workflows", "analytics-qa"), ("workflowtemplates", "analytics-qa"), ("cronworkflows", "analytics-qa")}
    assert not [k for k in double.state.objects if k[0] == "reconciler.io" and k[2] == "analytics-qa"]
    for (_, plural, _, name), obj in argo.items():
        assert obj["apiVersion"] == "argoproj.io/v1alpha1"
        errors = sorted(jsonschema.Draft7Validator(schemas[plural]).iter_errors(obj), key=str)
        assert not errors, f"{plural}/{name}: {errors[0].message} at {list(errors[0].path)}"
        assert _unknown_fields(obj, schemas[plural]) == [], f"{plural}/{name}"
    # The other environments stay on the reconciler's own group; the namespace says who runs it.
    assert ("reconciler.io", "workflowtemplates", "analytics-dev", "common-steps") in double.state.objects
    labels = double.state.objects[("", "namespaces", "", "analytics-qa")]["metadata"]["labels"]
    assert labels["reconciler.io/engine"] == "argo"
    # Argo's objects read back through the usual commands.
    listed = _cli(env, "list", "-n", "analytics-qa")
    assert listed.returncode == 0 and "etl-daily" in listed.stdout, listed.stderr
    again = _cli(env, "sync", "--repo", str(repo))
    assert again.stdout.count("no changes") == 3, again.stdout


def test_the_runner_leaves_argo_workflows_to_argo(double: ApiServerDouble, tmp_path: Path) -> None:
    from reconciler.artifacts import LocalArtifactRepository
    from reconciler.executors.inprocess import InProcessExecutor
    from reconciler.runner import WorkflowRunner

    _argo_schema(double, "workflows")
    store = KubernetesStore(double.api_client())
    store.install_crds()
    store.set_engine("on-argo", "argo")
    store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                  "metadata": {"name": "wf", "namespace": "on-argo"}, "spec": {"entrypoint": "main"}})
    store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                  "metadata": {"name": "wf", "namespace": "ours"}, "spec": {"entrypoint": "main"}})
    runner = WorkflowRunner(store, InProcessExecutor(), LocalArtifactRepository(tmp_path / "artifacts"), tmp_path)
    assert runner.claim("on-argo", "wf") is None
    assert "annotations" not in double.state.objects[("argoproj.io", "workflows", "on-argo", "wf")]["metadata"]
    assert runner.claim("ours", "wf") is not None, "the same workflow in a reconciler namespace is ours"
