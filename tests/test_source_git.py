"""The git source: a bare local copy, fetched without checkouts; failures are results, not crashes."""

from __future__ import annotations

import pytest

from reconciler.source import GitSource, redact
from reconciler.source.repository import cache_dir

from .gitops_repo import make_remote, template

pytestmark = pytest.mark.xdist_group("gitops")


def test_fetch_and_read_files_of_every_branch_without_a_working_tree(tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    dev = remote.commit("dev", {"workflows/extra.yaml": "x: 1\n"})
    source = GitSource(str(remote.bare), tmp_path / "home")
    result = source.fetch()
    assert result.ok and result.error == ""
    assert source.branches() == {"main": remote.remote_head("main"), "qa": remote.remote_head("qa"), "dev": dev}
    assert source.repo.bare and not (source.path / "workflows").exists()
    assert sorted(source.blob_shas(dev, "workflows")) == ["workflows/etl.yaml", "workflows/extra.yaml"]
    assert sorted(source.blob_shas(source.head("main"), "workflows")) == ["workflows/etl.yaml"]
    assert source.read(dev, "workflows/extra.yaml") == b"x: 1\n"
    assert source.read(dev, "nope.yaml") is None
    assert source.default_branch() == "main"
    assert source.head("nope") is None
    # a second source object for the same URL reuses the same copy
    assert GitSource(str(remote.bare), tmp_path / "home").path == source.path


def test_unreachable_remote_is_a_failed_result_and_keeps_refs(tmp_path):
    remote = make_remote(tmp_path / "git")
    source = GitSource(str(remote.bare), tmp_path / "home")
    assert source.fetch().ok
    before = source.branches()
    remote.bare.rename(tmp_path / "elsewhere.git")
    result = source.fetch()
    assert not result.ok and "fetch" in result.error and str(remote.bare) in result.error
    assert source.branches() == before
    missing = GitSource(str(tmp_path / "never"), tmp_path / "home").fetch()
    assert not missing.ok and "does not exist" in missing.error


def test_credentials_never_show_in_messages(tmp_path):
    url = "https://bot:s3cret-token@git.invalid/team/workflows.git"
    assert redact(url) == "https://***@git.invalid/team/workflows.git"
    source = GitSource(url, tmp_path / "home")
    assert "s3cret" not in source.display_url and "s3cret" not in str(cache_dir(tmp_path, url))
    result = source.fetch()
    assert not result.ok and "s3cret" not in result.error


def test_force_push_is_reported_per_branch(tmp_path):
    remote = make_remote(tmp_path / "git")
    remote.commit("dev", {"a.yaml": "a: 1\n"})
    source = GitSource(str(remote.bare), tmp_path / "home")
    source.fetch()
    remote.git("checkout", "-q", "dev")
    remote.git("reset", "-q", "--hard", "main")
    remote.commit("dev", {"b.yaml": "b: 1\n"}, push=False)
    remote.git("push", "-q", "--force", "origin", "dev")
    qa = remote.commit("qa", {"c.yaml": "c: 1\n"})
    result = source.fetch()
    assert not result.ok and set(result.rewritten) == {"dev"} and "force-push" in result.error
    assert source.head("qa") == qa  # the other branches still move on
    assert source.fetch(accept_rewrites=True).ok and source.head("dev") == remote.remote_head("dev")


def test_webhook_signature_and_branch():
    import hashlib
    import hmac

    from reconciler.source.webhook import pushed_branch, verify_signature, verify_token

    body = b'{"ref": "refs/heads/dev", "after": "abc"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", body, good)
    assert not verify_signature("other", body, good)
    assert not verify_signature("s3cret", body + b" ", good)
    assert not verify_signature("s3cret", body, None) and not verify_signature("s3cret", body, "sha1=00")
    assert verify_token("t", "t") and not verify_token("t", "u") and not verify_token("t", None)
    assert pushed_branch(body) == "dev"
    assert pushed_branch(b'{"ref": "refs/tags/v1"}') is None and pushed_branch(b"not json") is None
