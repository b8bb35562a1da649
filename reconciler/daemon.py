"""`reconciler up`: the one long-running process: the workflow runner, the GitOps sync loop, the
scheduler and the HTTP API. On the Kubernetes backend several replicas elect one leader (election.py)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from prometheus_client import make_asgi_app

from reconciler import metrics
from reconciler.api.settings import ApiSettings
from reconciler.artifacts import LocalArtifactRepository
from reconciler.config import artifacts_path, open_home_store
from reconciler.election import LeaderElection, lease_duration
from reconciler.executors import LocalProcessExecutor
from reconciler.executors.settings import StepSettings
from reconciler.runner import WorkflowRunner

log = logging.getLogger("reconciler.daemon")


class Daemon:
    def __init__(self, home: Path, *, repo: str | None = None, poll_interval: float = 30.0,
                 max_running: int | None = None, steps: StepSettings | None = None, keep_scratch: bool = False,
                 grace: float = 10.0,
                 lease_seconds: float = 15.0, api: ApiSettings | None = None, max_deaths: int = 3) -> None:
        self.home = Path(home)
        self.api_settings = api  # None: no HTTP API
        self.api = None
        self.metrics_app = make_asgi_app(registry=metrics.REGISTRY)  # served by the API at /metrics
        self.repo = repo
        self.poll_interval = poll_interval
        self.sync_loop = None
        self.scheduler = None
        self.outcomes = None  # the thread counting workflow outcomes (start_metrics)
        self.grace = grace
        self.stop = threading.Event()
        self.executor = LocalProcessExecutor(settings=steps)
        log.info("steps run with isolation %s", self.executor.isolation)
        self.store = open_home_store(self.home)
        self.runner = WorkflowRunner(self.store, self.executor, LocalArtifactRepository(artifacts_path(self.home)),
                                     self.home, max_running=max_running, lease_seconds=lease_seconds,
                                     max_deaths=max_deaths, keep_scratch=keep_scratch)
        # On a cluster several replicas share the store: one Lease decides which of them acts.
        system_namespace = getattr(self.store, "system_namespace", None)
        self.election = None if system_namespace is None else LeaderElection(
            self.store, self.runner.identity, self.stop, namespace=system_namespace, duration=lease_duration())

    def install_signal_handlers(self) -> None:
        def graceful(signum: int, _frame: object) -> None:
            log.info("received %s: stopping gracefully (grace %.0fs)", signal.Signals(signum).name, self.grace)
            self.stop.set()

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, graceful)

    def start_sync(self) -> None:
        """The GitOps loop, on its own store connection: a sync pass never waits on the runner."""
        from reconciler.sync import SyncLoop

        self.sync_store = open_home_store(self.home)
        self.sync_loop = SyncLoop(self.sync_store, repo=self.repo, home=self.home, interval=self.poll_interval)
        self.sync_loop.after_pass.append(lambda _results: self.scheduler.refresh())
        self.sync_loop.after_pass.append(
            lambda results: metrics.observe_sync(results, self.sync_loop.reconciler.last_fetch))
        self.sync_loop.start()
        log.info("syncing %s every %gs", self.repo, self.poll_interval)

    def start_scheduler(self) -> None:
        """CronWorkflows fire only where this process holds the leader lease (see schedule/)."""
        from reconciler.schedule import CronScheduler
        from reconciler.store.leases import LEADER_LEASE, Lease

        self.schedule_store = open_home_store(self.home)
        if self.election is not None:  # the daemon's lease, kept by the election
            self.scheduler = CronScheduler(self.schedule_store, home=self.home, lease=self.election.lease,
                                           manage_lease=False, on_fire=metrics.observe_fire)
        else:
            lease = Lease(self.schedule_store, LEADER_LEASE, identity=self.runner.identity)
            self.scheduler = CronScheduler(self.schedule_store, home=self.home, lease=lease,
                                           on_fire=metrics.observe_fire)
        metrics.count_workflows_from(lambda: self.schedule_store.list_brief("Workflow"))
        self.scheduler.start()

    def start_metrics(self) -> None:
        """Workflow outcomes counted from the store's change feed (see reconciler/outcomes.py), and the
        environments' namespaces known from the last run, so workflow metrics carry `environment`."""
        from reconciler.outcomes import watch_outcomes
        from reconciler.sync import status as status_book

        metrics.learn_environments({(e.get("spec") or {}).get("namespace"): e["metadata"]["name"]
                                    for e in status_book.list_environments(self.store)
                                    if (e.get("spec") or {}).get("namespace")})
        self.outcomes = watch_outcomes(lambda: open_home_store(self.home), self.stop, time.time())

    def start_api(self) -> None:
        from reconciler.api.server import ApiStartError, start_daemon_api

        try:
            self.api = start_daemon_api(self.home, self.api_settings, sync_loop=self.sync_loop, repo=self.repo,
                                        metrics_app=self.metrics_app)
        except ApiStartError as exc:
            log.error("%s", exc)
            raise SystemExit(2) from None

    def run(self) -> None:
        log.info("runner %s serving %s", self.runner.identity, self.home)
        self.start_metrics()
        if self.election is not None:
            self._run_elected()
            return
        self.start_scheduler()
        if self.repo:
            self.start_sync()
        try:
            if self.api_settings is not None:
                self.start_api()
            self.runner.serve(self.stop, grace=self.grace)
        finally:
            self._close()
        log.info("stopped; state saved")

    def _run_elected(self) -> None:
        """With several replicas on one cluster: the API at once, everything else once leading."""
        try:
            if self.api_settings is not None:
                self.start_api()
            if not self.election.wait_for_leadership():
                return
            self.election.keep_leading(self.stop.set)
            self.start_scheduler()
            if self.repo:
                self.start_sync()
                if self.api is not None:  # webhooks and diff reach the loop from now on
                    self.api.app.state.api.sync_loop = self.sync_loop
            self.runner.serve(self.stop, grace=self.grace)
        finally:
            self.election.release()
            self._close()
        if self.election.lost:
            raise SystemExit(1)  # restarted by the supervisor, as a standby
        log.info("stopped; state saved")

    def _close(self) -> None:
        if self.api is not None:
            self.api.stop()
        if self.sync_loop is not None:
            self.sync_loop.stop()
            self.sync_store.close()
        if self.scheduler is not None:
            self.scheduler.shutdown()
            self.schedule_store.close()
        self.executor.close()
        self.store.close()
