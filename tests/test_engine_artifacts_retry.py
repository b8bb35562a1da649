"""Artifacts (passing, archive none, directories, raw, per-step isolation, volumes),
retryStrategy (limit, retryPolicy, backoff, expression) and timeouts (template `timeout`,
workflow `activeDeadlineSeconds`)."""

from __future__ import annotations

import time

from reconciler.artifacts import LocalArtifactRepository
from tests.test_engine_helpers import children, maybe_node, node, pods, result, run

# ---- artifacts -------------------------------------------------------------------------------


def test_output_artifact_passed_to_later_step_at_another_path(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: art-pass}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: produce, template: produce}
    - - name: consume
        template: consume
        arguments:
          artifacts:
          - {name: data, from: "{{steps.produce.outputs.artifacts.out}}"}
  - name: produce
    container: {image: alpine, command: [sh, -c, "echo 'line one' > /tmp/produced-by-art-pass.txt; echo 'line two' >> /tmp/produced-by-art-pass.txt"]}
    outputs:
      artifacts:
      - {name: out, path: /tmp/produced-by-art-pass.txt}
  - name: consume
    inputs:
      artifacts:
      - {name: data, path: /var/in/copy.txt}
    container: {image: alpine, command: [sh, -c, "cat /var/in/copy.txt; test ! -e /tmp/produced-by-art-pass.txt && echo isolated"]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    produced = node(wf, "produce")["outputs"]["artifacts"]
    assert [a["name"] for a in produced] == ["out"]
    assert result(wf, "consume") == "line one\nline two\nisolated"
    assert node(wf, "consume")["inputs"]["artifacts"][0]["path"] == "/var/in/copy.txt"


def test_archive_none_stores_the_plain_file(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: art-none}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: produce, template: produce}
    - - name: consume
        template: consume
        arguments:
          artifacts:
          - {name: data, from: "{{steps.produce.outputs.artifacts.out}}"}
  - name: produce
    container: {image: alpine, command: [sh, -c, "printf 'plain bytes' > /tmp/o.txt"]}
    outputs:
      artifacts:
      - {name: out, path: /tmp/o.txt, archive: {none: {}}}
  - name: consume
    inputs:
      artifacts:
      - {name: data, path: /tmp/in.txt}
    container: {image: alpine, command: [sh, -c, "cat /tmp/in.txt"]}
""")
    art = node(wf, "produce")["outputs"]["artifacts"][0]
    stored = LocalArtifactRepository(tmp_path / "art").path(art["key"])
    assert stored.is_file()
    assert stored.read_bytes() == b"plain bytes"
    assert result(wf, "consume") == "plain bytes"


def test_default_archive_is_a_tarball(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: art-tar}
spec:
  entrypoint: main
  templates:
  - name: produce
    container: {image: alpine, command: [sh, -c, "printf 'x' > /tmp/o.txt"]}
    outputs:
      artifacts:
      - {name: out, path: /tmp/o.txt}
""".replace("  templates:\n", "  templates:\n  - name: main\n    steps:\n    - - {name: produce, template: produce}\n"))
    art = node(wf, "produce")["outputs"]["artifacts"][0]
    stored = LocalArtifactRepository(tmp_path / "art").path(art["key"])
    assert stored.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic


def test_directory_artifact(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: art-dir}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: produce, template: produce}
      - name: consume
        depends: produce
        template: consume
        arguments:
          artifacts:
          - {name: tree, from: "{{tasks.produce.outputs.artifacts.tree}}"}
  - name: produce
    container:
      image: alpine
      command: [sh, -c, "mkdir -p /tmp/out/sub && echo A > /tmp/out/a.txt && echo B > /tmp/out/sub/b.txt"]
    outputs:
      artifacts:
      - {name: tree, path: /tmp/out}
  - name: consume
    inputs:
      artifacts:
      - {name: tree, path: /data/tree}
    container: {image: alpine, command: [sh, -c, "cat /data/tree/a.txt /data/tree/sub/b.txt; ls /data/tree | sort | tr '\\n' ,"]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert result(wf, "consume") == "A\nB\na.txt,sub,"


def test_raw_input_artifact(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: art-raw}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: raw-world}]}
  templates:
  - name: main
    inputs:
      artifacts:
      - name: text
        path: /tmp/raw/input.txt
        raw: {data: "hello {{workflow.parameters.who}}"}
    container: {image: alpine, command: [sh, -c, "cat /tmp/raw/input.txt"]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "art-raw")["outputs"]["result"] == "hello raw-world"


def test_parallel_steps_have_private_filesystems(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: isolation}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: one, template: write, arguments: {parameters: [{name: v, value: first}]}}
      - {name: two, template: write, arguments: {parameters: [{name: v, value: second}]}}
  - name: write
    inputs: {parameters: [{name: v}]}
    container:
      image: alpine
      command: [sh, -c, "echo {{inputs.parameters.v}} > /tmp/out.txt; sleep 0.3; cat /tmp/out.txt"]
    outputs:
      parameters:
      - {name: out, valueFrom: {path: /tmp/out.txt}}
""")
    one, two = node(wf, "one"), node(wf, "two")
    # They really ran at the same time.
    assert one["startedAtUnix"] < two["finishedAtUnix"] and two["startedAtUnix"] < one["finishedAtUnix"]
    assert one["outputs"]["result"] == "first"
    assert two["outputs"]["result"] == "second"
    assert one["outputs"]["parameters"][0]["value"].strip() == "first"
    assert two["outputs"]["parameters"][0]["value"].strip() == "second"


def test_volume_is_shared_between_steps(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: volume}
spec:
  entrypoint: main
  volumeClaimTemplates:
  - metadata: {name: work}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
  templates:
  - name: main
    steps:
    - - {name: write, template: write}
    - - {name: read, template: read}
  - name: write
    container:
      image: alpine
      command: [sh, -c, "echo shared-data > /mnt/vol/file.txt"]
      volumeMounts: [{name: work, mountPath: /mnt/vol}]
  - name: read
    container:
      image: alpine
      command: [sh, -c, "cat /mnt/vol/file.txt"]
      volumeMounts: [{name: work, mountPath: /mnt/vol}]
""")
    assert result(wf, "read") == "shared-data"


# ---- retryStrategy ---------------------------------------------------------------------------

def retry_wf(name: str, strategy: str, command: str) -> str:
    return f"""
metadata: {{name: {name}}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: flaky, template: flaky}}
  - name: flaky
    retryStrategy: {strategy}
    container: {{image: alpine, command: [sh, -c, "{command}"]}}
"""


def attempts(wf: dict, name: str = "flaky") -> list[dict]:
    retry = node(wf, name)
    assert retry["type"] == "Retry"
    return children(wf, retry)


def test_retry_limit_until_success(tmp_path) -> None:
    wf = run(tmp_path, retry_wf("retry-ok", "{limit: 3}", "echo attempt-{{retries}}; [ {{retries}} -ge 2 ]"))
    tries = attempts(wf)
    assert [t["displayName"] for t in tries] == ["flaky(0)", "flaky(1)", "flaky(2)"]
    assert [t["phase"] for t in tries] == ["Failed", "Failed", "Succeeded"]
    assert [t["outputs"]["result"] for t in tries] == ["attempt-0", "attempt-1", "attempt-2"]
    assert all(t["type"] == "Pod" for t in tries)
    assert node(wf, "flaky")["phase"] == "Succeeded"
    assert node(wf, "flaky")["outputs"]["result"] == "attempt-2"
    assert wf["status"]["phase"] == "Succeeded"


def test_retry_counter_on_a_volume(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: retry-volume}
spec:
  entrypoint: main
  volumeClaimTemplates:
  - metadata: {name: state}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
  templates:
  - name: main
    steps:
    - - {name: flaky, template: flaky}
  - name: flaky
    retryStrategy: {limit: "4"}
    container:
      image: alpine
      command: [sh, -c, "n=$(cat /mnt/vol/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /mnt/vol/n; echo try-$n; [ $n -ge 3 ]"]
      volumeMounts: [{name: state, mountPath: /mnt/vol}]
""")
    tries = attempts(wf)
    assert [t["phase"] for t in tries] == ["Failed", "Failed", "Succeeded"]
    assert tries[-1]["outputs"]["result"] == "try-3"
    assert wf["status"]["phase"] == "Succeeded"


def test_retry_limit_exhausted_fails(tmp_path) -> None:
    wf = run(tmp_path, retry_wf("retry-exhausted", "{limit: 1}", "exit 5"))
    tries = attempts(wf)
    assert len(tries) == 2  # the first attempt and one retry
    assert all(t["phase"] == "Failed" for t in tries)
    assert tries[-1]["outputs"]["exitCode"] == "5"
    assert node(wf, "flaky")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Failed"


def test_retry_policy_on_error_does_not_retry_failed_step(tmp_path) -> None:
    wf = run(tmp_path, retry_wf("retry-on-error", "{limit: 3, retryPolicy: OnError}", "exit 1"))
    tries = attempts(wf)
    assert len(tries) == 1
    assert tries[0]["phase"] == "Failed"
    assert node(wf, "flaky")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Failed"


def test_retry_policy_always_retries_failed_step(tmp_path) -> None:
    wf = run(tmp_path, retry_wf("retry-always", "{limit: 2, retryPolicy: Always}", "exit 1"))
    assert len(attempts(wf)) == 3


def test_retry_backoff_delays_next_attempt(tmp_path) -> None:
    wf = run(tmp_path, retry_wf("retry-backoff", "{limit: 1, backoff: {duration: 1s}}", "[ {{retries}} -ge 1 ]"))
    first, second = attempts(wf)
    assert first["phase"] == "Failed" and second["phase"] == "Succeeded"
    assert second["startedAtUnix"] - first["finishedAtUnix"] >= 0.99
    assert wf["status"]["phase"] == "Succeeded"


def test_retry_expression_on_last_exit_code(tmp_path) -> None:
    # Exit codes 2, 3, 4...: the expression allows a retry only after exit code 2.
    wf = run(tmp_path, retry_wf("retry-expr", "{limit: 5, expression: 'asInt(lastRetry.exitCode) == 2'}",
                                "exit $(( {{retries}} + 2 ))"))
    tries = attempts(wf)
    assert [t["outputs"]["exitCode"] for t in tries] == ["2", "3"]
    assert node(wf, "flaky")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Failed"


def test_retry_on_dag_task_and_dependent_waits(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: retry-dag}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: flaky, template: flaky}
      - {name: after, template: echo, depends: flaky}
  - name: flaky
    retryStrategy: {limit: 2}
    container: {image: alpine, command: [sh, -c, "[ {{retries}} -ge 1 ]"]}
  - name: echo
    container: {image: alpine, command: [sh, -c, "echo after"]}
""")
    tries = attempts(wf)
    assert [t["phase"] for t in tries] == ["Failed", "Succeeded"]
    assert node(wf, "after")["startedAtUnix"] >= tries[-1]["finishedAtUnix"]
    # A failed attempt that was retried successfully does not fail the DAG.
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


# ---- timeouts --------------------------------------------------------------------------------

def test_template_timeout_fails_the_node(tmp_path) -> None:
    started = time.monotonic()
    wf = run(tmp_path, """
metadata: {name: tmpl-timeout}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: slow, template: slow}
  - name: slow
    timeout: 1s
    container: {image: alpine, command: [sh, -c, "sleep 5; echo finished"]}
""")
    elapsed = time.monotonic() - started
    slow = node(wf, "slow")
    assert slow["phase"] == "Failed"
    assert slow["finishedAtUnix"] - slow["startedAtUnix"] < 2.5
    assert "finished" not in (slow.get("outputs") or {}).get("result", "")
    assert wf["status"]["phase"] == "Failed"
    assert elapsed < 4.5


def test_workflow_active_deadline_fails_the_workflow(tmp_path) -> None:
    started = time.monotonic()
    wf = run(tmp_path, """
metadata: {name: wf-deadline}
spec:
  entrypoint: main
  activeDeadlineSeconds: 1
  templates:
  - name: main
    steps:
    - - {name: slow, template: slow}
    - - {name: never, template: slow}
  - name: slow
    container: {image: alpine, command: [sh, -c, "sleep 10"]}
""")
    elapsed = time.monotonic() - started
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"].get("message")
    assert node(wf, "slow")["phase"] in ("Failed", "Error")
    assert maybe_node(wf, "never") is None
    assert elapsed < 5
    assert wf["status"]["finishedAtUnix"] - wf["status"]["startedAtUnix"] < 4
    assert not [p for p in pods(wf) if p["phase"] in ("Running", "Pending")]
