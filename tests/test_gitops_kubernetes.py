"""GitOps onto a cluster: `reconciler sync --backend kubernetes` (a real subprocess, the official client,
real HTTP) against the API-server double applies the sample repository into its three namespaces,
a second sync changes nothing, and an out-of-band edit is reverted by the next sync."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.store.kube_client import KubeApi

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

    # Someone edits a template in the cluster (kubectl edit): the next sync puts git's version back.
    api = KubeApi(double.api_client())
    path = "/apis/reconciler.io/v1alpha1/namespaces/analytics-prod/workflowtemplates/common-steps"
    original = api.request("GET", path)["spec"]
    api.request("PATCH", path, body={"spec": {"entrypoint": "edited-by-hand"}},
                content_type="application/merge-patch+json")
    third = _cli(env, "sync", "--repo", str(repo))
    assert third.returncode == 0, third.stderr
    assert api.request("GET", path)["spec"] == original
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
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: store: GET /apis/reconciler.io/")
    assert "retrying in" in done.stderr, "each retry is said"
