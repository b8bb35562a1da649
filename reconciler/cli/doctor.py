"""`reconciler doctor`: check the store, recover what a damaged one still holds, back it up, restore it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import err, fail
from reconciler.cli.context import Context
from reconciler.config import store_path
from reconciler.store import doctor as store_doctor
from reconciler.store.errors import StoreError


def _daemon_using(path: Path) -> str | None:
    """The live daemon holding the leader lease of the store at `path`, if one can be seen."""
    from reconciler.runner.leases import holder_is_dead
    from reconciler.store import SqliteStore
    from reconciler.store.leases import LEADER_LEASE, Lease

    if not path.is_file():
        return None
    try:
        with SqliteStore(path) as store:
            holder = Lease(store, LEADER_LEASE, identity="reconciler-doctor").holder()
    except StoreError:
        return None  # unreadable: no daemon can be working on it either
    return holder if holder and not holder_is_dead(holder) else None


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--recover", is_flag=True,
                  help="Copy every readable object into a new store; the damaged file is kept beside it.")
    @click.option("--restore", "restore_from", type=click.Path(dir_okay=False, exists=True), metavar="BACKUP",
                  help="Put a backup in place of the store (the current file is kept beside it).")
    @click.option("--backup", "backup_to", type=click.Path(dir_okay=False), metavar="PATH",
                  help="Write a consistent copy of the store to PATH (safe while the daemon runs).")
    @click.pass_obj
    def doctor(obj: Context, recover: bool, restore_from: str | None, backup_to: str | None) -> None:
        """Check the store (exit 2 if it is damaged); --recover, --restore or --backup it."""
        if sum(map(bool, (recover, restore_from, backup_to))) > 1:
            fail("doctor: give at most one of --recover, --restore, --backup")
        path = store_path(obj.home)
        try:
            if backup_to:
                store_doctor.backup(path, Path(backup_to))
                click.echo(f"{path}: backed up to {backup_to}")
                return
            if recover or restore_from:
                holder = _daemon_using(path)
                if holder:
                    fail(f"{path}: a daemon ({holder}) is using this store; stop it first")
            if recover:
                done = store_doctor.recover(path)
                for line in done.skipped:
                    err.print(f"skipped: {line}")
                click.echo(f"{path}: new store with {done.objects} object(s) and {done.nodes} node(s) recovered; "
                           f"the damaged file is kept as {done.kept}")
                return
            if restore_from:
                kept = store_doctor.restore(path, Path(restore_from))
                click.echo(f"{path}: restored from {restore_from}" + (f"; the previous file is kept as {kept}"
                                                                       if kept else ""))
                return
        except StoreError as exc:
            fail(str(exc))
        if not path.exists():
            click.echo(f"{path}: no store yet (the first command that needs one creates it)")
            return
        report = store_doctor.check(path)
        if report.ok:
            click.echo(f"{path}: ok ({report.objects} object(s), {report.nodes} node(s))")
            return
        for problem in report.problems:
            err.print(problem)
        if report.more:
            err.print(f"... and {report.more} more problem(s)")
        err.print(f"{path}: damaged; `reconciler doctor --recover` copies what can be read into a new store, "
                  "`reconciler doctor --restore BACKUP` puts a backup in place")
        sys.exit(2)
