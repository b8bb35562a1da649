"""Self-checking workflows (tests/format_matrix/*.yaml): placeholder families against the fields
that take them, template kinds nested in each other under controls. Each workflow ends Succeeded
only if its check steps received what they should (a check runs `test GOT = WANT`; a step that
must not run runs `false`).

Every case runs on the in-process executor (tests/engine_inprocess.py, no processes); a handful
run on the real local executor too, so the in-process shell cannot drift from a real one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.engine_inprocess import shell_executor
from tests.test_engine_helpers import nodes, run

MATRIX = Path(__file__).parent / "format_matrix"
CASES = {
    f"{path.stem}/{case}": body
    for path in sorted(MATRIX.glob("*.yaml"))
    for case, body in yaml.safe_load(path.read_text()).items()
}
ON_PROCESSES = ("placeholders/steps-output-result-to-arguments", "placeholders/tasks-output-parameter-to-arguments",
                "placeholders/depends-results-and-continue-on", "placeholders/retries-counter")


def _check(wf: dict) -> None:
    status = wf["status"]
    detail = ", ".join(f"{n['displayName']}={n['phase']} {n.get('message', '')}".strip() for n in nodes(wf))
    assert status["phase"] == "Succeeded", f"{status.get('message')}; nodes: {detail}"
    ran_never = [n for n in nodes(wf) if n.get("templateName") == "never" and n["phase"] not in ("Omitted", "Skipped")
                 and n["displayName"] != "fails"]
    assert ran_never == [], f"steps that must not run ran: {detail}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_in_process(tmp_path, case: str) -> None:
    _check(run(tmp_path, yaml.safe_dump(CASES[case]), executor=shell_executor()))


@pytest.mark.parametrize("case", ON_PROCESSES)
def test_case_on_real_processes(tmp_path, case: str) -> None:
    _check(run(tmp_path, yaml.safe_dump(CASES[case])))


def test_a_wrong_value_fails_the_check(tmp_path) -> None:
    """The checks really check: the same case with a wrong expectation fails."""
    body = yaml.safe_load(yaml.safe_dump(CASES["placeholders/steps-output-result-to-arguments"]))
    body["spec"]["templates"][0]["steps"][1][0]["arguments"]["parameters"][1]["value"] = "other"
    wf = run(tmp_path, yaml.safe_dump(body), executor=shell_executor())
    assert wf["status"]["phase"] == "Failed"


def test_the_in_process_shell_refuses_what_it_does_not_understand(tmp_path) -> None:
    text = "metadata: {name: odd}\nspec:\n  entrypoint: m\n  templates:\n  - name: m\n" \
           "    container: {image: alpine, command: [sh, -c, 'ls /']}\n"
    wf = run(tmp_path, text, executor=shell_executor())
    assert wf["status"]["phase"] in ("Error", "Failed")
    (pod,) = [n for n in nodes(wf) if n["type"] == "Pod"]
    assert "in-process shell: not supported: command 'ls'" in pod["message"]
