"""Every field of Argo's CRDs is accepted: implemented, or Kubernetes-only with a lint warning, or
(for what the local engine does not run yet) accepted with a warning that says so.

The walk is in tests/crd_walk.py (`python -m tests.crd_walk -v` prints the coverage figures)."""

from __future__ import annotations

import textwrap

from reconciler.spec import load_text, validate_documents
from reconciler.spec.validation import LOCAL_NO_EFFECT
from tests.crd_walk import CRD_FILES, IMPLEMENTED, K8S, MISSING, NOT_RUN, coverage, missing_roots, report, walk


def _lint(text: str) -> list[tuple[str, str, str]]:
    docs = load_text(textwrap.dedent(text), "wf.yaml")
    return [(p.severity, p.field, p.message) for p in validate_documents(docs)]


def test_no_field_of_argos_crds_is_missing_from_our_schemas(capsys):
    fields, counts = coverage()
    with capsys.disabled():
        print("\n" + report(fields, counts))
    assert {f.kind for f in fields} == set(CRD_FILES)
    assert counts[IMPLEMENTED] > 2000 and counts[K8S] > 5000  # the walk really descends
    assert missing_roots(fields) == []
    assert counts[MISSING] == 0


def test_the_walk_classifies_known_fields():
    by_path = {f.path: f.status for f in walk("Workflow")}
    assert by_path["spec.templates[].container.image"] == IMPLEMENTED
    assert by_path["spec.templates[].dag.tasks[].depends"] == IMPLEMENTED
    assert by_path["spec.templates[].container.livenessProbe"] == K8S
    assert by_path["spec.templates[].container.livenessProbe.httpGet.port"] == K8S  # inherited
    assert by_path["spec.volumes[].hostPath.path"] == K8S
    assert by_path["spec.templates[].resource.manifest"] == K8S  # x-local-error: an error locally
    assert by_path["spec.templates[].http.url"] == IMPLEMENTED
    assert by_path["spec.templates[].data.source.artifactPaths.s3.key"] == IMPLEMENTED
    assert by_path["spec.templates[].data.source.artifactPaths.s3.bucket"] == NOT_RUN
    assert by_path["spec.templates[].containerSet.containers[].dependencies"] == IMPLEMENTED
    assert by_path["spec.templates[].containerSet.containers[].livenessProbe"] == K8S
    assert by_path["spec.templates[].archiveLocation.archiveLogs"] == IMPLEMENTED
    assert by_path["spec.retryStrategy.limit"] == IMPLEMENTED
    assert by_path["spec.priority"] == IMPLEMENTED
    assert by_path["spec.volumeClaimGC.strategy"] == IMPLEMENTED
    assert by_path["spec.templates[].outputs.artifacts[].s3.bucket"] == NOT_RUN
    cron = {f.path: f.status for f in walk("CronWorkflow")}
    assert cron["spec.workflowSpec.templates[].container.stdin"] == K8S
    assert cron["spec.when"] == IMPLEMENTED
    assert cron["spec.stopStrategy.expression"] == IMPLEMENTED
    assert cron["spec.workflowMetadata.generateName"] == NOT_RUN


POD_FIELDS = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: pod-fields-
spec:
  entrypoint: main
  hostAliases:
  - {ip: 127.0.0.1, hostnames: [db.local]}
  volumes:
  - name: cfg
    hostPath: {path: /etc}
  - name: scratch
    emptyDir: {medium: Memory}
  templates:
  - name: main
    container:
      image: busybox
      command: [echo, hi]
      stdin: true
      tty: true
      terminationMessagePolicy: FallbackToLogsOnError
      livenessProbe: {exec: {command: [true]}, periodSeconds: 5}
      lifecycle: {preStop: {exec: {command: [true]}}}
      resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]
      volumeMounts:
      - {name: scratch, mountPath: /scratch, mountPropagation: None}
"""


def test_kubernetes_only_pod_and_container_fields_are_accepted_with_a_warning_each():
    problems = _lint(POD_FIELDS)
    assert [p for p in problems if p[0] == "error"] == []
    warned = {field for severity, field, message in problems if message == LOCAL_NO_EFFECT}
    assert warned == {
        "spec.hostAliases", "spec.volumes[0].hostPath", "spec.volumes[1].emptyDir.medium",
        "spec.templates[0].container.stdin", "spec.templates[0].container.tty",
        "spec.templates[0].container.terminationMessagePolicy", "spec.templates[0].container.livenessProbe",
        "spec.templates[0].container.lifecycle", "spec.templates[0].container.resizePolicy",
        "spec.templates[0].container.volumeMounts[0].mountPropagation",
    }


def test_a_misspelt_kubernetes_field_is_still_an_error():
    problems = _lint(POD_FIELDS.replace("livenessProbe", "livenesProbe"))
    assert ("error", "spec.templates[0].container.livenesProbe",
            "unsupported field spec.templates[0].container.livenesProbe") in problems


def test_fields_the_local_engine_does_not_run_yet_say_what_happens_instead():
    text = """\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {generateName: later-}
    spec:
      entrypoint: main
      artifactGC: {strategy: Never}
      hooks: {started: {expression: "true", template: call}}
      templates:
      - name: main
        container: {image: busybox}
        outputs: {artifacts: [{name: a, path: /a, archive: {zip: {}}}]}
      - name: call
        container: {image: alpine}
    """
    problems = _lint(text)
    assert [p for p in problems if p[0] == "error"] == []
    messages = {field: message for severity, field, message in problems if severity == "warning"}
    assert "still deletes" in messages["spec.artifactGC.strategy"]
    assert "zip archives" in messages["spec.templates[0].outputs.artifacts[0].archive.zip"]
    assert "other than exit" in messages["spec.hooks.started"]


def test_plugin_template_is_an_error_on_the_local_executor():
    text = """\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {generateName: plug-}
    spec:
      entrypoint: main
      templates:
      - name: main
        plugin: {hello: {text: hi}}
    """
    assert _lint(text) == [("error", "spec.templates[0].plugin",
                            "plugin templates need an Argo executor plugin: the local executor does not support them")]
