"""SyncLoop, the class the daemon runs beside the runner."""

from __future__ import annotations

import pytest

from reconciler.store import open_store
from reconciler.sync import SyncLoop

from .conftest import wait_for
from .gitops_repo import make_remote, template

pytestmark = pytest.mark.xdist_group("gitops")



def test_loop_syncs_in_the_background_and_wakes_on_trigger(tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    with open_store(tmp_path / "home" / "store.db") as store:
        loop = SyncLoop(store, str(remote.bare), tmp_path / "home", interval=3600)
        assert not loop.first_pass_done
        loop.start()
        try:
            assert loop.wait_first_pass(10) and loop.running
            assert [o["metadata"]["name"] for o in store.list("WorkflowTemplate", "team-dev")] == ["etl"]
            remote.commit("dev", {"workflows/report.yaml": template("report")})
            loop.trigger("dev")  # what a push webhook will call; the interval alone would take an hour
            assert wait_for(lambda: len(store.list("WorkflowTemplate", "team-dev")) == 2)
            assert [r.phase for r in loop.last_results] == ["Synced"] * 3
        finally:
            loop.stop()
        assert not loop.running


def test_failed_fetches_back_off_up_to_the_interval(tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    with open_store(":memory:") as store:
        loop = SyncLoop(store, str(remote.bare), tmp_path / "home", interval=5)
        loop.run_pass()
        assert loop.next_delay() == 5
        remote.bare.rename(tmp_path / "gone.git")
        delays = []
        for _ in range(5):
            results = loop.run_pass()
            delays.append(loop.next_delay())
        assert delays == [1, 2, 4, 5, 5]
        assert {r.reason for r in results} == {"FetchFailed"}
        (tmp_path / "gone.git").rename(remote.bare)
        loop.run_pass("dev")
        assert loop.next_delay() == 5


def test_a_broken_repository_does_not_kill_the_loop(tmp_path):
    with open_store(":memory:") as store:
        loop = SyncLoop(store, str(tmp_path / "missing"), tmp_path / "home", interval=1)
        assert loop.run_pass() == [] and "no config branch" in loop.last_error
        assert loop.first_pass_done
