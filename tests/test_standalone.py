"""A clone of the repository works on its own: what tests and docs need is inside it, and an
installed package (not editable, no checkout around it) still has its sample repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ARGO_CRDS, CORPUS, REPO, corpus_files

# Spelled in two parts so this file does not match its own search.
OUTSIDE = ("../" + "shared", "/work/" + "shared")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_file_refers_to_a_folder_outside_the_repository():
    offenders = []
    for path in tracked_files():
        if path.is_relative_to(ARGO_CRDS) or not path.is_file():
            continue  # 11 MB of upstream schemas, unchanged
        text = path.read_bytes().decode("utf-8", "replace")
        offenders += [f"{path.relative_to(REPO)}: {word}" for word in OUTSIDE if word in text]
    assert offenders == []


def test_the_argo_examples_are_vendored_with_their_licence_and_source():
    assert "Apache License" in (CORPUS / "LICENSE").read_text()
    assert "Commit: f016ad89eb269d282aec06dc491c29f396a38df4" in (CORPUS / "SOURCE.txt").read_text()
    listed = corpus_files()
    expected = [line.split("\t")[0] for line in (CORPUS / "expected.tsv").read_text().splitlines()[1:] if line]
    assert len(listed) > 50 and set(expected) <= set(listed)
    assert [name for name in listed if not (CORPUS / name).is_file()] == []


def test_argos_full_crds_are_vendored_with_their_licence():
    assert "Apache License" in (ARGO_CRDS / "LICENSE").read_text()
    kinds = {}
    for path in sorted(ARGO_CRDS.glob("argoproj.io_*.yaml")):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == "argoproj.io"
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1" and "spec" in version["schema"]["openAPIV3Schema"]["properties"]
        kinds[crd["spec"]["names"]["kind"]] = path.name
    assert set(kinds) == {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"}


def test_sample_repo_works_from_a_plain_install_outside_a_checkout(tmp_path: Path):
    # What the Docker image builds from (see .dockerignore), installed as a wheel into a folder.
    src, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in ("reconciler", "sample-repo"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(src)],
                   check=True, capture_output=True, timeout=300)
    shutil.rmtree(src)  # no checkout left anywhere
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target), RECONCILER_HOME=str(tmp_path / "home"))
    where = subprocess.run([sys.executable, "-c", "import reconciler; print(reconciler.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))
    made = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "sample-repo", "demo"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    demo = elsewhere / "demo"
    branches = subprocess.run(["git", "-C", str(demo), "branch", "--format=%(refname:short)"], capture_output=True,
                              text=True, check=True).stdout.split()
    assert sorted(branches) == ["dev", "main", "qa"]
    shipped = sorted(p.relative_to(REPO / "sample-repo") for p in (REPO / "sample-repo").rglob("*") if p.is_file())
    got = sorted(p.relative_to(demo) for p in demo.rglob("*") if p.is_file() and ".git" not in p.relative_to(demo).parts)
    assert got == shipped  # hidden .reconciler/policies included
    assert all((demo / p).read_bytes() == (REPO / "sample-repo" / p).read_bytes() for p in shipped)
