"""LocalArtifactRepository: save/load of files and directories, archives, key safety."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from reconciler.artifacts import ArtifactRepository, LocalArtifactRepository


@pytest.fixture
def repo(tmp_path: Path) -> LocalArtifactRepository:
    return LocalArtifactRepository(tmp_path / "repo")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "src" / "etc"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("A\n")
    (d / "sub" / "b.txt").write_text("B\n")
    (d / "run.sh").write_text("#!/bin/sh\n")
    (d / "run.sh").chmod(0o755)
    os.symlink("/usr/share/zoneinfo/UTC", d / "localtime")  # absolute links survive, as in Argo
    return d


def listing(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))


def test_is_a_repository(repo):
    assert isinstance(repo, ArtifactRepository)


@pytest.mark.parametrize("archive", ["none", "tar"])
def test_file_round_trip(repo, tmp_path, archive):
    src = tmp_path / "hello_world.txt"
    src.write_text("hello world\n")
    loc = repo.save(src, "ns/wf/node-1/hello-art.tgz", archive=archive)
    assert loc["key"] == "ns/wf/node-1/hello-art.tgz" and loc["archive"] == archive
    assert loc["size"] == (tmp_path / "repo" / loc["key"]).stat().st_size > 0
    out = repo.load(loc, tmp_path / "in" / "message")
    assert out == tmp_path / "in" / "message"
    assert out.is_file() and out.read_text() == "hello world\n"  # a tarred file unpacks to the file


@pytest.mark.parametrize("archive", ["none", "tar"])
def test_directory_round_trip(repo, tmp_path, tree, archive):
    loc = repo.save(tree, "ns/wf/n/etc", archive=archive)
    out = repo.load(loc, tmp_path / "dest" / "etc")
    assert out.is_dir() and listing(out) == listing(tree)
    assert (out / "sub" / "b.txt").read_text() == "B\n"
    assert os.access(out / "run.sh", os.X_OK)
    assert os.readlink(out / "localtime") == "/usr/share/zoneinfo/UTC"


def test_tar_layout_matches_argo(repo, tmp_path, tree):
    loc = repo.save(tree, "k/etc.tgz")
    with tarfile.open(tmp_path / "repo" / "k" / "etc.tgz") as tf:
        names = tf.getnames()
    assert "etc" in names and all(n == "etc" or n.startswith("etc/") for n in names)
    assert loc["size"] == (tmp_path / "repo" / "k" / "etc.tgz").stat().st_size


def test_tar_with_several_top_entries_loads_as_a_directory(repo, tmp_path):
    key_path = tmp_path / "repo" / "multi.tgz"
    with tarfile.open(key_path, "w:gz") as tf:
        for name in ("x", "y"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tf.addfile(info, io.BytesIO(name.encode()))
    out = repo.load({"key": "multi.tgz", "archive": "tar"}, tmp_path / "out")
    assert listing(out) == ["x", "y"] and (out / "y").read_text() == "y"


def test_archive_inferred_from_key_when_location_lacks_it(repo, tmp_path):
    src = tmp_path / "f"
    src.write_text("data")
    repo.save(src, "a/f.tgz", archive="tar")
    assert repo.load({"key": "a/f.tgz"}, tmp_path / "g").read_text() == "data"


def test_compression_level_is_respected(repo, tmp_path):
    src = tmp_path / "big.txt"
    src.write_text("the same line again\n" * 20_000)
    stored = repo.save(src, "c/level0.tgz", compression_level=0)["size"]
    packed = repo.save(src, "c/level9.tgz", compression_level=9)["size"]
    assert stored > src.stat().st_size > 10 * packed
    assert repo.load({"key": "c/level0.tgz", "archive": "tar"}, tmp_path / "o").read_bytes() == src.read_bytes()
    with pytest.raises(ValueError):
        repo.save(src, "c/bad.tgz", compression_level=11)


def test_save_replaces_and_load_replaces(repo, tmp_path, tree):
    f = tmp_path / "f"
    f.write_text("one")
    repo.save(f, "k/x", archive="none")
    repo.save(tree, "k/x", archive="none")  # a directory over a file
    dest = tmp_path / "dest"
    dest.write_text("stale")
    assert repo.load({"key": "k/x", "archive": "none"}, dest).is_dir()
    assert not [p for p in (tmp_path / "repo" / "k").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_save_bytes(repo, tmp_path):
    loc = repo.save_bytes(b"1\n2\n3\n", "ns/wf/raw/text")
    assert loc == {"key": "ns/wf/raw/text", "archive": "none", "size": 6}
    assert repo.load(loc, tmp_path / "t").read_bytes() == b"1\n2\n3\n"


def test_missing_source_and_missing_key(repo, tmp_path):
    with pytest.raises(FileNotFoundError):
        repo.save(tmp_path / "nope", "k")
    with pytest.raises(FileNotFoundError):
        repo.load({"key": "never/saved", "archive": "none"}, tmp_path / "x")
    with pytest.raises(ValueError):
        repo.save(tmp_path, "k", archive="zip")


@pytest.mark.parametrize("key", ["../escape", "/abs/key", "a/../../b", "a//b", "a/./b", "", "a/", "a\\b"])
def test_keys_escaping_root_are_refused(repo, tmp_path, key):
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(ValueError):
        repo.save(src, key)
    with pytest.raises(ValueError):
        repo.save_bytes(b"x", key)
    with pytest.raises(ValueError):
        repo.load({"key": key, "archive": "none"}, tmp_path / "out")
    assert not (tmp_path / "escape").exists()


def test_symlinked_directory_inside_root_cannot_escape(repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "repo" / "link")
    with pytest.raises(ValueError):
        repo.save_bytes(b"x", "link/file")
    assert list(outside.iterdir()) == []


def test_tar_members_escaping_destination_are_refused(repo, tmp_path):
    with tarfile.open(tmp_path / "repo" / "evil.tgz", "w:gz") as tf:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises((tarfile.TarError, ValueError)):
        repo.load({"key": "evil.tgz", "archive": "tar"}, tmp_path / "d" / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_delete_prefix(repo, tmp_path):
    for key in ("ns/wf1/n1/a.tgz", "ns/wf1/n2/b", "ns/wf2/n1/a.tgz"):
        repo.save_bytes(b"x", key)
    repo.delete_prefix("ns/wf1/")
    assert not (tmp_path / "repo" / "ns" / "wf1").exists()
    assert (tmp_path / "repo" / "ns" / "wf2" / "n1" / "a.tgz").exists()
    repo.delete_prefix("ns/never")  # nothing there: no error
    with pytest.raises(ValueError):
        repo.delete_prefix("")
    with pytest.raises(ValueError):
        repo.delete_prefix("../")
