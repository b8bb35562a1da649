"""Kubernetes' name rules, worded as Kubernetes words them.

Object names are DNS-1123 subdomains (at most 253 characters), namespaces DNS-1123 labels (at most
63), label keys qualified names with an optional DNS subdomain prefix, label values at most 63
characters of their own alphabet (empty allowed). `generateName` is checked as a prefix and the
name it generates (prefix cut to 58 characters plus 5 random ones, as apimachinery's
SimpleNameGenerator does) must itself be valid. Argo adds a rule of its own: its kinds' names end
up in pod names and label values, so Workflow and template names are at most 63 characters and
CronWorkflow names 52 (room for the `-<unix seconds>` of the workflows they create).

Every door (CLI, API, git sync, the store itself) asks this module, so a name that passes one
passes all, and nothing that reaches the filesystem can hold '/', '..' or a NUL.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
LABEL_VALUE_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# SimpleNameGenerator: a generated name fits a label (63) with 5 random characters.
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATED_PREFIX = DNS1123_LABEL_MAX_LENGTH - GENERATED_SUFFIX_LENGTH
# utilrand's alphabet: no vowels (no words by chance), no 0/1/3 (no look-alikes).
_RANDOM_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Argo's validate.go: maxCharsInObjectName and maxCharsInCronWorkflowName.
ARGO_NAME_LIMITS = {"Workflow": 63, "WorkflowTemplate": 63, "ClusterWorkflowTemplate": 63, "CronWorkflow": 52}
_ARGO_KIND_WORDS = {"Workflow": "workflow", "WorkflowTemplate": "workflow template",
                    "ClusterWorkflowTemplate": "cluster workflow template", "CronWorkflow": "cron workflow"}
# Kind -> API group, for Kubernetes' `Workflow.argoproj.io "x" is invalid: ...` wording.
_GROUPS = {"Workflow": "argoproj.io", "WorkflowTemplate": "argoproj.io", "ClusterWorkflowTemplate": "argoproj.io",
           "CronWorkflow": "argoproj.io", "ConfigMap": "", "PersistentVolumeClaim": ""}

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
# The same rules as JSON Schema patterns (spec/schemas/common.json objectName and namespaceName).
SUBDOMAIN_PATTERN = f"^{_SUBDOMAIN_FMT}$"
LABEL_PATTERN = f"^{_LABEL_FMT}$"
_LABEL_RE = re.compile(_LABEL_FMT)
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)

_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
              "and must start and end with an alphanumeric character")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                  "'-' or '.', and must start and end with an alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                       "with an alphanumeric character")


class InvalidName(ValueError):
    """An object whose metadata Kubernetes would refuse; str() is Kubernetes' one-line message."""

    def __init__(self, kind: str, name: str, errors: list[str]) -> None:
        self.kind, self.name, self.errors = kind, name, list(errors)
        group = _GROUPS.get(kind, "reconciler.io")
        qualified = f"{kind}.{group}" if group else kind
        detail = self.errors[0] if len(self.errors) == 1 else "[" + ", ".join(self.errors) + "]"
        super().__init__(f"{qualified} {_quote(name)} is invalid: {detail}")


# ---- apimachinery's pkg/util/validation -----------------------------------------------------------

def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_label(value: str) -> list[str]:
    """Why `value` is not a DNS-1123 label (namespaces); [] if it is one."""
    errs = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len(DNS1123_LABEL_MAX_LENGTH))
    if not _LABEL_RE.fullmatch(value):
        if _SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_LABEL_MSG, _LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """Why `value` is not a DNS-1123 subdomain (object names); [] if it is one."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_SUBDOMAIN_MSG, _SUBDOMAIN_FMT, "example.com"))
    return errs


def label_value(value: str) -> list[str]:
    """Why `value` is not a label value; [] if it is one (the empty string is)."""
    errs = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def qualified_name(value: str) -> list[str]:
    """Why `value` is not a qualified name (label and annotation keys: `[prefix/]name`); [] if it is."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                "123-abc"))
    return errs


def _mask_trailing_dash(name: str) -> str:
    # apimachinery's maskTrailingDash, quirk included: it drops two characters, not one.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def generate_name_prefix(prefix: str) -> list[str]:
    """Why `prefix` cannot be a generateName; [] if it can. A trailing '-' is allowed, and the
    name it generates (cut to 58 characters, 5 random ones added) must be a valid name too."""
    errs = dns1123_subdomain(_mask_trailing_dash(prefix))
    if errs:
        return errs
    example = prefix[:MAX_GENERATED_PREFIX] + "x" * GENERATED_SUFFIX_LENGTH
    return [f"generates invalid names such as {_quote(example)}: {m}" for m in dns1123_subdomain(example)]


def generate_name(prefix: str) -> str:
    """SimpleNameGenerator: the prefix cut to 58 characters, then 5 random characters."""
    return prefix[:MAX_GENERATED_PREFIX] + "".join(secrets.choice(_RANDOM_ALPHABET)
                                                   for _ in range(GENERATED_SUFFIX_LENGTH))


def object_name(text: str) -> str:
    """`text` if it is a valid object name, else a valid name made from it (lowercase, other
    characters as '-', a hash of the whole): for objects named after user values (locks)."""
    if not dns1123_subdomain(text):
        return text
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower())[:200].strip("-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{cleaned}-{digest}" if cleaned else digest


# ---- ValidateObjectMeta, and Argo's own rule ------------------------------------------------------

def _quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _invalid(path: tuple, value: Any, detail: str) -> tuple[tuple, str]:
    """field.Invalid, as (path under metadata, `Invalid value: "x": detail`)."""
    return path, f"Invalid value: {_quote(value)}: {detail}"


def argo_name_error(kind: str, name: str) -> str | None:
    """Argo's own limit on a name of its kinds (pod names and labels carry it), or None."""
    limit = ARGO_NAME_LIMITS.get(kind)
    if limit is None or len(name) <= limit:
        return None
    return (f"{_ARGO_KIND_WORDS[kind]} name {_quote(name)} must not be more than {limit} characters long "
            f"(currently {len(name)})")


def meta_errors(kind: str, meta: Mapping, *, namespaced: bool = True,
                identity: bool = True) -> Iterator[tuple[tuple, str]]:
    """(path under metadata, message) for each way `meta` breaks Kubernetes' (and Argo's) rules; the
    message is field.Error's body (`Invalid value: "x": ...`), field_name(path) its field. Without
    `identity`, only labels and annotations (what an update may change) are looked at."""
    if identity:
        yield from _identity_errors(kind, meta, namespaced)
    yield from labels_errors(meta.get("labels"))
    yield from annotations_errors(meta.get("annotations"))


def _identity_errors(kind: str, meta: Mapping, namespaced: bool) -> Iterator[tuple[tuple, str]]:
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        yield ("name",), "Required value: name or generateName is required"
    if isinstance(name, str) and name:
        for msg in dns1123_subdomain(name):
            yield _invalid(("name",), name, msg)
        argo = argo_name_error(kind, name)
        if argo:
            yield _invalid(("name",), name, argo)
    elif name not in (None, ""):
        yield _invalid(("name",), name, "must be a string")
    if isinstance(generate, str) and generate:
        for msg in generate_name_prefix(generate):
            yield _invalid(("generateName",), generate, msg)
    elif generate not in (None, ""):
        yield _invalid(("generateName",), generate, "must be a string")
    namespace = meta.get("namespace")
    if namespaced and namespace not in (None, ""):
        for msg in dns1123_label(namespace) if isinstance(namespace, str) else ["must be a string"]:
            yield _invalid(("namespace",), namespace, msg)


def labels_errors(labels: Any) -> Iterator[tuple[tuple, str]]:
    if labels is None:
        return
    if not isinstance(labels, Mapping):
        yield _invalid(("labels",), labels, "must be a map of strings")
        return
    for key, value in labels.items():
        for msg in qualified_name(key) if isinstance(key, str) else ["must be a string"]:
            yield _invalid(("labels", key), key, msg)
        for msg in label_value(value) if isinstance(value, str) else ["must be a string"]:
            yield _invalid(("labels", key), value, msg)


def annotations_errors(annotations: Any) -> Iterator[tuple[tuple, str]]:
    if annotations is None:
        return
    if not isinstance(annotations, Mapping):
        yield _invalid(("annotations",), annotations, "must be a map of strings")
        return
    total = 0
    for key, value in annotations.items():
        for msg in qualified_name(key.lower()) if isinstance(key, str) else ["must be a string"]:
            yield _invalid(("annotations", key), key, msg)
        total += len(str(key)) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        yield ("annotations",), f"Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"


def field_name(path: tuple) -> str:
    """Kubernetes' field for an error path: `metadata.labels`, never the key itself."""
    return "metadata." + str(path[0])


def check_meta(kind: str, meta: Mapping, *, namespaced: bool = True, identity: bool = True) -> None:
    """Raise InvalidName with every error of `meta`, in Kubernetes' one-line wording."""
    errors = [f"{field_name(path)}: {msg}"
              for path, msg in meta_errors(kind, meta, namespaced=namespaced, identity=identity)]
    if errors:
        raise InvalidName(kind, str(meta.get("name") or meta.get("generateName") or ""), errors)


def check_namespace(namespace: str) -> None:
    """Raise ValueError unless `namespace` is a DNS-1123 label (a flag, a URL path, a config value)."""
    errors = dns1123_label(namespace)
    if errors:
        raise ValueError(f"invalid namespace {_quote(namespace)}: {errors[0]}")


def check_name(name: str, what: str = "name") -> None:
    """Raise ValueError unless `name` is a DNS-1123 subdomain."""
    errors = dns1123_subdomain(name)
    if errors:
        raise ValueError(f"invalid {what} {_quote(name)}: {'; '.join(errors)}")
