"""spec.workflowMetadata (Argo's updateWorkflowMetadata), applied when the Workflow is built."""

from __future__ import annotations

import pytest

from reconciler.engine.submission import SubmissionError, build_workflow


def _doc(md: dict) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w", "labels": {"a": "1"}},
            "spec": {"entrypoint": "m", "arguments": {"parameters": [{"name": "p", "value": "x"}]},
                     "workflowMetadata": md, "templates": [{"name": "m", "suspend": {}}]}}


def test_labels_annotations_and_labels_from_land_on_the_object():
    wf = build_workflow(_doc({"labels": {"a": "2", "b": "3"}, "annotations": {"n": "v"},
                              "labelsFrom": {"c": {"expression": "workflow.parameters.p + '-' + workflow.name"}}}),
                        namespace="default", parameters={"p": "y"})
    assert wf["metadata"]["labels"] == {"a": "2", "b": "3", "c": "y-w"}
    assert wf["metadata"]["annotations"] == {"n": "v"}


@pytest.mark.parametrize("md, message", [
    ({"labels": {"a": "not valid!"}}, "invalid label value 'not valid!' for label 'a'"),
    ({"labelsFrom": {"c": {"expression": "1 + 1"}}}, "evaluated to int but must be a string"),
    ({"labelsFrom": {"c": {"expression": "workflow.("}}}, "failed to evaluate label 'c' expression"),
])
def test_a_bad_label_is_a_submission_error_naming_it(md, message):
    with pytest.raises(SubmissionError, match=message.replace("(", r"\(")):
        build_workflow(_doc(md), namespace="default")
