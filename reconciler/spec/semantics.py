"""Semantic checks the schemas cannot express: references between templates, files and objects.

Written defensively: schema errors are reported separately, so a field of the wrong type here
is skipped rather than trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .containerset import ContainerSetError, waves
from .dag import check_dag
from .loading import Document, format_path
from .problems import Problem

TemplateLookup = Callable[[str, "str | None", str], "dict | None"]

WORKFLOW_KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})
TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")
_CONTAINER_KEYS = ("container", "script")
_CONTAINER_LISTS = ("sidecars", "initContainers")


def workflow_spec(doc: Document) -> tuple[dict | None, tuple]:
    """The WorkflowSpec of a workflow-like document and its path (CronWorkflows nest it)."""
    spec = doc.obj.get("spec")
    if not isinstance(spec, dict) or doc.kind not in WORKFLOW_KINDS:
        return None, ()
    if doc.kind == "CronWorkflow":
        inner = spec.get("workflowSpec")
        return (inner, ("spec", "workflowSpec")) if isinstance(inner, dict) else (None, ())
    return spec, ("spec",)


def is_templated(value: Any) -> bool:
    """Values with ``{{...}}`` are only known at run time, so they are not checked statically."""
    return isinstance(value, str) and "{{" in value


def template_names(spec: Any) -> list[str]:
    templates = spec.get("templates") if isinstance(spec, dict) else None
    if not isinstance(templates, list):
        return []
    return [t["name"] for t in templates if isinstance(t, dict) and isinstance(t.get("name"), str)]


def find_template(spec: Any, name: str) -> tuple[int, dict] | None:
    templates = spec.get("templates") if isinstance(spec, dict) else None
    for i, t in enumerate(templates if isinstance(templates, list) else []):
        if isinstance(t, dict) and t.get("name") == name:
            return i, t
    return None


class TemplateIndex:
    """Finds (Cluster)WorkflowTemplates in the batch being validated, then via the lookup."""

    def __init__(self, docs: list[Document], lookup: TemplateLookup | None):
        self._lookup = lookup
        self._batch: dict[tuple[str, str], list[Document]] = {}
        for doc in docs:
            if doc.kind in TEMPLATE_KINDS and doc.name:
                self._batch.setdefault((doc.kind, doc.name), []).append(doc)

    def find(self, kind: str, namespace: str | None, name: str) -> tuple[bool, dict | None]:
        """``(known, obj)``: known is False when nobody could say whether the template exists."""
        for doc in self._batch.get((kind, name), []):
            if kind == "ClusterWorkflowTemplate" or None in (namespace, doc.namespace) \
                    or doc.namespace == namespace:
                return True, doc.obj
        if self._lookup is None:
            return False, None
        obj = self._lookup(kind, None if kind == "ClusterWorkflowTemplate" else namespace, name)
        return True, obj if isinstance(obj, dict) else None


def resolve_workflow_template_ref(ref: Any, namespace: str | None,
                                  index: TemplateIndex) -> tuple[str, str, bool, dict | None] | None:
    """``(kind, name, known, spec)`` for a workflowTemplateRef, or None if it is not checkable."""
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or is_templated(ref["name"]):
        return None
    kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") is True else "WorkflowTemplate"
    known, obj = index.find(kind, namespace, ref["name"])
    spec = obj.get("spec") if isinstance(obj, dict) else None
    return kind, ref["name"], known, spec if isinstance(spec, dict) else ({} if obj else None)


class _Checker:
    def __init__(self, doc: Document, index: TemplateIndex):
        self.doc = doc
        self.index = index
        self.problems: list[Problem] = []
        self.names: set[str] = set()
        self.names_complete = True  # False when templates may come from an unresolvable ref
        self.volumes: set[str] | None = None  # None: do not check volume mounts

    def report(self, at: tuple, message: str) -> None:
        self.problems.append(Problem(self.doc.filename, self.doc.line_of(at), format_path(at), message))

    def run(self) -> list[Problem]:
        if self.doc.kind == "CronWorkflow":
            self._schedules()
        spec, prefix = workflow_spec(self.doc)
        if spec is None:
            return self.problems
        ref_spec = self._workflow_template_ref(spec, prefix)
        self._templates(spec, prefix)
        if ref_spec is not None:
            self.names.update(template_names(ref_spec))
        self._entrypoint(spec, prefix)
        self._volumes(spec, ref_spec)
        if isinstance(spec.get("onExit"), str):
            self._template_name(spec["onExit"], prefix + ("onExit",))
        self._hooks(spec.get("hooks"), prefix + ("hooks",))
        templates = spec.get("templates")
        for i, template in enumerate(templates if isinstance(templates, list) else []):
            if isinstance(template, dict):
                self._template(template, prefix + ("templates", i))
        return self.problems

    def _schedules(self) -> None:
        """Cron expressions and time zones are checked here, not first when the schedule fires."""
        from reconciler.spec.cron import ScheduleError, parse_expression, zone

        spec = self.doc.obj.get("spec")
        if not isinstance(spec, dict):
            return
        entries = [(("spec", "schedule"), spec["schedule"])] if isinstance(spec.get("schedule"), str) else []
        schedules = spec.get("schedules")
        entries += [(("spec", "schedules", i), text) for i, text in enumerate(schedules or [])
                    if isinstance(text, str)] if isinstance(schedules, list) else []
        for at, text in entries:
            try:
                parse_expression(text)
            except ScheduleError as exc:
                self.report(at, str(exc))
        if isinstance(spec.get("timezone"), str):
            try:
                zone(spec["timezone"], None)
            except ScheduleError as exc:
                self.report(("spec", "timezone"), str(exc))

    def _workflow_template_ref(self, spec: dict, prefix: tuple) -> dict | None:
        at = prefix + ("workflowTemplateRef",)
        resolved = resolve_workflow_template_ref(spec.get("workflowTemplateRef"), self.doc.namespace, self.index)
        if resolved is None:
            if "workflowTemplateRef" in spec:
                self.names_complete = False
            return None
        kind, name, known, ref_spec = resolved
        if ref_spec is None:
            self.names_complete = False
            if known:
                self.report(at + ("name",), f"workflowTemplateRef names unknown {kind} {name}")
        return ref_spec

    def _templates(self, spec: dict, prefix: tuple) -> None:
        templates = spec.get("templates")
        if not templates and "workflowTemplateRef" not in spec:
            self.report(prefix + ("templates",), "has neither templates nor workflowTemplateRef")
            self.names_complete = False  # "unknown template" would only repeat that problem
        elif templates is not None and not isinstance(templates, list):
            self.names_complete = False  # the schema error says templates is broken
        for i, template in enumerate(templates if isinstance(templates, list) else []):
            name = template.get("name") if isinstance(template, dict) else None
            if not isinstance(name, str):
                continue
            if name in self.names:
                self.report(prefix + ("templates", i, "name"), f"duplicate template name {name}")
            self.names.add(name)

    def _entrypoint(self, spec: dict, prefix: tuple) -> None:
        entrypoint = spec.get("entrypoint")
        if entrypoint is None:
            if self.doc.kind in ("Workflow", "CronWorkflow") and "workflowTemplateRef" not in spec:
                at = prefix + ("entrypoint",)
                self.report(at, f"missing required field {format_path(at)}")
        elif isinstance(entrypoint, str):
            self._template_name(entrypoint, prefix + ("entrypoint",))

    def _volumes(self, spec: dict, ref_spec: dict | None) -> None:
        # Templates in a (Cluster)WorkflowTemplate may mount volumes that the calling workflow
        # declares, so only whole workflows are checked.
        if self.doc.kind not in ("Workflow", "CronWorkflow"):
            return
        if "workflowTemplateRef" in spec and ref_spec is None:
            return
        self.volumes = set()
        for source in (spec, ref_spec or {}):
            self.volumes |= set(_named(source.get("volumes")))
            claims = source.get("volumeClaimTemplates")
            for claim in claims if isinstance(claims, list) else []:
                meta = claim.get("metadata") if isinstance(claim, dict) else None
                if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                    self.volumes.add(meta["name"])

    def _template_name(self, name: str, at: tuple) -> None:
        if self.names_complete and not is_templated(name) and name not in self.names:
            self.report(at, f"unknown template {name}")

    def _template_ref(self, ref: Any, at: tuple) -> None:
        if not isinstance(ref, dict):
            return
        name, template = ref.get("name"), ref.get("template")
        if not isinstance(name, str) or is_templated(name):
            return
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") is True else "WorkflowTemplate"
        known, obj = self.index.find(kind, self.doc.namespace, name)
        if known and obj is None:
            self.report(at + ("name",), f"templateRef names unknown {kind} {name}")
        elif (obj is not None and isinstance(template, str) and not is_templated(template)
              and template not in template_names(obj.get("spec"))):
            self.report(at + ("template",), f"{kind} {name} has no template {template}")

    def _hooks(self, hooks: Any, at: tuple) -> None:
        exit_hook = hooks.get("exit") if isinstance(hooks, dict) else None
        if not isinstance(exit_hook, dict):
            return
        if isinstance(exit_hook.get("template"), str):
            self._template_name(exit_hook["template"], at + ("exit", "template"))
        self._template_ref(exit_hook.get("templateRef"), at + ("exit", "templateRef"))

    def _template(self, template: dict, at: tuple) -> None:
        steps = template.get("steps")
        if isinstance(steps, list):
            seen: set[str] = set()
            for g, group in enumerate(steps):
                for j, step in enumerate(group if isinstance(group, list) else []):
                    if not isinstance(step, dict):
                        continue
                    step_at = at + ("steps", g, j)
                    name = step.get("name")
                    if isinstance(name, str):
                        if name in seen:
                            self.report(step_at + ("name",), f"duplicate step name {name}")
                        seen.add(name)
                    self._invocation(step, step_at)
        dag = template.get("dag")
        if isinstance(dag, dict):
            self.problems.extend(check_dag(dag, at + ("dag",), self.doc))
            tasks = dag.get("tasks")
            for j, task in enumerate(tasks if isinstance(tasks, list) else []):
                if isinstance(task, dict):
                    self._invocation(task, at + ("dag", "tasks", j))
        self._mounts(template, at)
        container_set = template.get("containerSet")
        if isinstance(container_set, dict) and isinstance(container_set.get("containers"), list):
            try:
                waves([c for c in container_set["containers"]
                       if isinstance(c, dict) and isinstance(c.get("name"), str)])
            except ContainerSetError as exc:
                self.report(at + ("containerSet", "containers"), str(exc))
        if "suspend" in template and template.get("synchronization"):
            # A lock held by a node that only waits would block others for nothing; Argo has no use for it.
            self.report(at + ("synchronization",), "synchronization is not supported on a suspend template; "
                        "put it on the steps or DAG that contains the suspend step")

    def _invocation(self, step: dict, at: tuple) -> None:
        if isinstance(step.get("template"), str):
            self._template_name(step["template"], at + ("template",))
        if isinstance(step.get("onExit"), str):
            self._template_name(step["onExit"], at + ("onExit",))
        self._template_ref(step.get("templateRef"), at + ("templateRef",))
        self._hooks(step.get("hooks"), at + ("hooks",))
        if isinstance(step.get("inline"), dict):
            self._template(step["inline"], at + ("inline",))

    def _mounts(self, template: dict, at: tuple) -> None:
        if self.volumes is None:
            return
        declared = self.volumes | set(_named(template.get("volumes")))
        for container, c_at in _containers(template, at):
            mounts = container.get("volumeMounts")
            for k, mount in enumerate(mounts if isinstance(mounts, list) else []):
                name = mount.get("name") if isinstance(mount, dict) else None
                if isinstance(name, str) and not is_templated(name) and name not in declared:
                    self.report(c_at + ("volumeMounts", k, "name"), f"volumeMount names undeclared volume {name}")


def _named(items: Any) -> Iterator[str]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            yield item["name"]


def _containers(template: dict, at: tuple) -> Iterator[tuple[dict, tuple]]:
    for key in _CONTAINER_KEYS:
        if isinstance(template.get(key), dict):
            yield template[key], at + (key,)
    for key in _CONTAINER_LISTS:
        items = template.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield item, at + (key, i)
    container_set = template.get("containerSet")
    if isinstance(container_set, dict):
        yield container_set, at + ("containerSet",)
        items = container_set.get("containers")
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield item, at + ("containerSet", "containers", i)


def check_semantics(doc: Document, index: TemplateIndex) -> list[Problem]:
    """Reference, DAG and volume problems of ``doc``; ``index`` knows the batch and the lookup."""
    return _Checker(doc, index).run()
