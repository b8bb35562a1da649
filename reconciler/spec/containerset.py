"""`containerSet` templates on the local executor: the containers of one step, run in one sandbox.

Argo starts every container of the set in one Pod and holds each until the containers it depends
on have completed; they share the Pod's volumes. Here the set becomes one `sh` script in one
sandbox (so the filesystem and volumes are shared): containers whose dependencies are done start
together in the background, each wave is waited for, and the first failure stops the set with that
exit code (a container whose dependency failed never starts). Only the container named `main`
writes to stdout, so `outputs.result` is main's, as Argo takes inputs and outputs from `main`; the
others' output goes to the log. `containerSet.retryStrategy` retries each container in place
(`retries` more attempts, `duration` apart), as Argo's emissary does.
"""

from __future__ import annotations

import shlex

from .expressions.durations import parse_duration

MAX_CONTAINERS = 64


class ContainerSetError(ValueError):
    pass


def waves(containers: list[dict]) -> list[list[dict]]:
    """The containers grouped so each group's dependencies are all in earlier groups."""
    by_name = {c["name"]: c for c in containers}
    if len(by_name) != len(containers):
        raise ContainerSetError("containerSet: container names must be unique")
    done: set[str] = set()
    out: list[list[dict]] = []
    left = list(containers)
    while left:
        ready = [c for c in left if all(d in done for d in c.get("dependencies") or [])]
        if not ready:
            missing = sorted({d for c in left for d in c.get("dependencies") or [] if d not in by_name})
            raise ContainerSetError(f"containerSet: unknown dependencies {missing}" if missing
                                    else "containerSet: dependency cycle among " + ", ".join(c["name"] for c in left))
        out.append(ready)
        done |= {c["name"] for c in ready}
        left = [c for c in left if c["name"] not in done]
    return out


def _run_line(container: dict, retries: int, pause: float) -> str:
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if not argv:
        raise ContainerSetError(f"containerSet: container {container['name']!r} has no command")
    env = [f"{e['name']}={e.get('value', '')}" for e in container.get("env") or [] if "value" in e]
    run = shlex.join((["env", *env] if env else []) + argv)
    if container.get("workingDir"):
        run = f"cd {shlex.quote(str(container['workingDir']))} && {run}"
    attempt = f"( {run} )" + ("" if container["name"] == "main" else " >&2")
    if retries <= 0:
        return attempt
    return (f"n=0; until {attempt}; do rc=$?; n=$((n+1)); [ $n -gt {retries} ] && exit $rc; "
            f"sleep {pause:g}; done")


def as_container(container_set: dict) -> dict:
    """A container template equivalent to ``container_set`` on one machine."""
    containers = container_set.get("containers") or []
    if not containers or len(containers) > MAX_CONTAINERS:
        raise ContainerSetError(f"containerSet: between 1 and {MAX_CONTAINERS} containers")
    strategy = container_set.get("retryStrategy") or {}
    retries = int(strategy.get("retries") or 0)
    pause = parse_duration(strategy["duration"]) if strategy.get("duration") else 0.0
    lines = ["set +e"]
    for wave in waves(containers):
        pids = []
        for i, container in enumerate(wave):
            lines.append(f"( {_run_line(container, retries, pause)} ) & p{i}=$!")
            pids.append(f"p{i}")
        # Wait for the whole wave; the first failure (in order) is the set's exit code.
        lines.append("rc=0; " + " ".join(f"wait ${p} || {{ c=$?; [ $rc -eq 0 ] && rc=$c; }};" for p in pids))
        lines.append('[ "$rc" -eq 0 ] || exit "$rc"')
    mounts = {m["mountPath"]: m for m in container_set.get("volumeMounts") or []}
    for container in containers:
        for mount in container.get("volumeMounts") or []:
            mounts.setdefault(mount["mountPath"], mount)
    return {"image": str(containers[0].get("image", "")), "command": ["sh", "-c", "\n".join(lines)],
            "volumeMounts": list(mounts.values())}
