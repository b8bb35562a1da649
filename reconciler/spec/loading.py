"""Load YAML workflow files into plain Python objects that remember the line of every field.

We compose the node tree ourselves instead of calling ``yaml.safe_load`` because the loader
alone forgets line numbers, silently keeps the last of two duplicate keys, and expands alias
bombs until memory runs out. Every problem carries the file name and a 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from reconciler.limits import TooLarge, check_file_size

from .problems import Problem, SpecError

ARGO_API_VERSION = "argoproj.io/v1alpha1"
ARGO_KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})

# Aliases may legitimately share a block a few times; past this many extra nodes the file is
# either an attack (billion laughs) or a mistake, and expanding it would stall the daemon.
MAX_ALIAS_EXPANSION = 10_000
# Deep enough for any real workflow, shallow enough that recursive conversion never nears
# Python's recursion limit.
MAX_DEPTH = 200

_TAG = "tag:yaml.org,2002:"
_PLAIN_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_MERGE_TAG = _TAG + "merge"

PathT = tuple  # a field path like ("spec", "templates", 2, "daemon")


@dataclass
class Document:
    """One YAML document of a file: the plain object plus where each field was written."""

    obj: dict
    filename: str
    index: int  # position of the document in a multi-document file, 0-based
    lines: dict[PathT, int] = field(default_factory=dict, repr=False, compare=False)
    start_line: int = 1

    @property
    def kind(self) -> str | None:
        kind = self.obj.get("kind")
        return kind if isinstance(kind, str) else None

    @property
    def name(self) -> str | None:
        meta = self.obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else None

    @property
    def namespace(self) -> str | None:
        meta = self.obj.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        return ns if isinstance(ns, str) else None

    def line_of(self, path: PathT) -> int:
        """Line of ``path``; a missing field reports the line of its nearest existing ancestor."""
        path = tuple(path)
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return self.start_line


class _AliasTooBig(Exception):
    pass


class _RecursiveAlias(Exception):
    pass


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None

if CParser is not None:
    # libyaml's parser is several times faster, but its C composer recurses without limit and
    # crashes the interpreter on deeply nested input; pair it with PyYAML's Python composer.
    class _SafeBase(Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc, valid-type]
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
else:
    _SafeBase = yaml.SafeLoader  # type: ignore[misc, assignment]


class _Loader(_SafeBase):
    """Safe loader that remembers where the first alias of a document is, for error reports."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.first_alias_line: int | None = None

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.first_alias_line is None and self.check_event(yaml.AliasEvent):
            self.first_alias_line = self.peek_event().start_mark.line + 1
        return super().compose_node(parent, index)


def _measure(node: Node, memo: dict[int, tuple[int, int]], active: set[int]) -> tuple[int, int]:
    """Expanded node count and depth of ``node``, memoised so shared (aliased) nodes cost once."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _RecursiveAlias
    active.add(key)
    size, depth = 1, 0
    if isinstance(node, SequenceNode):
        children: list[Node] = list(node.value)
    elif isinstance(node, MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        child_size, child_depth = _measure(child, memo, active)
        size += child_size
        depth = max(depth, child_depth + 1)
        # Every node counted twice is an alias expansion; stop as soon as those alone are too
        # many, long before the count itself could grow to billions.
        if size - len(memo) > MAX_ALIAS_EXPANSION:
            raise _AliasTooBig
    active.discard(key)
    memo[key] = (size, depth)
    return size, depth


def _type_name(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    return "a scalar"


class _Converter:
    """Turns one composed document into plain dict/list/scalars and a path -> line map."""

    def __init__(self, loader: _Loader, filename: str):
        self.loader = loader
        self.filename = filename
        self.problems: list[Problem] = []

    def _problem(self, node: Node, path: PathT, message: str) -> None:
        self.problems.append(Problem(self.filename, node.start_mark.line + 1, format_path(path), message))

    def convert(self, node: Node, path: PathT, lines: dict[PathT, int]) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                self._problem(node, path, f"unsupported YAML tag {node.tag}")
            items = []
            for i, child in enumerate(node.value):
                lines[path + (i,)] = child.start_mark.line + 1
                items.append(self.convert(child, path + (i,), lines))
            return items
        if node.tag != _TAG + "map":
            self._problem(node, path, f"unsupported YAML tag {node.tag}")
        return self._mapping(node, path, lines)

    def _scalar(self, node: ScalarNode, path: PathT) -> Any:
        if node.tag in _PLAIN_SCALAR_TAGS:
            return self.loader.construct_object(node)
        if node.tag == _TAG + "timestamp":
            # Kubernetes tooling treats timestamps as strings; a datetime would not survive JSON.
            return node.value
        self._problem(node, path, f"unsupported YAML tag {node.tag}")
        return node.value

    def _mapping(self, node: MappingNode, path: PathT, lines: dict[PathT, int]) -> dict:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "mapping keys must be plain scalars")
                continue
            # Kubernetes' YAML-to-JSON step turns every key into its text; do the same.
            key = key_node.value
            if key in result:
                self._problem(key_node, path + (key,), f"duplicate key {key!r}")
                continue
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, path + (key,), lines)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self._problem(source, path, f"merge key '<<' needs a mapping, got {_type_name(source)}")
                    continue
                merged_lines: dict[PathT, int] = {}
                merged = self._mapping(source, path, merged_lines)
                new_keys = {k for k in merged if k not in result}
                for k in new_keys:
                    result[k] = merged[k]
                for p, line in merged_lines.items():
                    if p[len(path)] in new_keys:
                        lines[p] = line
        return result


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null",
               list: "array", dict: "object"}


def json_type(value: Any) -> str:
    """JSON Schema's name for the type of a loaded value, as used in error messages."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def format_path(path: PathT) -> str:
    """``("spec", "templates", 2, "daemon")`` -> ``spec.templates[2].daemon``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and all(c.isalnum() or c in "_-" for c in str(part)):
            out += f".{part}" if out else str(part)
        else:
            # Keys like label names contain dots and slashes; quote them so the path stays readable.
            out += f'["{part}"]'
    return out or "(document)"


def _check_document(node: Node, loader: _Loader, filename: str, index: int,
                    problems: list[Problem]) -> Document | None:
    start = node.start_mark.line + 1
    if isinstance(node, ScalarNode) and node.tag == _TAG + "null":
        return None  # an empty document between '---' separators, as kubectl also skips
    if not isinstance(node, MappingNode):
        problems.append(Problem(filename, start, "(document)",
                                f"document is not a mapping (got {_type_name(node)})"))
        return None
    try:
        memo: dict[int, tuple[int, int]] = {}
        size, depth = _measure(node, memo, set())
        too_big = size - len(memo) > MAX_ALIAS_EXPANSION
    except _AliasTooBig:
        too_big, depth = True, 0
    except _RecursiveAlias:
        line = loader.first_alias_line or start
        problems.append(Problem(filename, line, "(document)", "recursive YAML alias"))
        return None
    if too_big:
        line = loader.first_alias_line or start
        problems.append(Problem(filename, line, "(document)",
                                f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes"))
        return None
    if depth > MAX_DEPTH:
        problems.append(Problem(filename, start, "(document)",
                                f"document is nested more than {MAX_DEPTH} levels deep"))
        return None
    converter = _Converter(loader, filename)
    lines: dict[PathT, int] = {}
    obj = converter.convert(node, (), lines)
    problems.extend(converter.problems)
    doc = Document(obj=obj, filename=filename, index=index, lines=lines, start_line=start)
    problems.extend(_check_header(doc))
    return doc


def _check_header(doc: Document) -> list[Problem]:
    found = []
    api_version, kind = doc.obj.get("apiVersion"), doc.obj.get("kind")
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if value is None:
            found.append(Problem(doc.filename, doc.start_line, key, f"missing {key}"))
        elif not isinstance(value, str):
            found.append(Problem(doc.filename, doc.line_of((key,)), key,
                                 f"expected string, got {json_type(value)}"))
    if isinstance(kind, str) and kind in ARGO_KINDS and isinstance(api_version, str) \
            and api_version != ARGO_API_VERSION:
        found.append(Problem(doc.filename, doc.line_of(("apiVersion",)), "apiVersion",
                             f"expected {ARGO_API_VERSION} for kind {kind}, got {api_version}"))
    return found


def _yaml_error(exc: yaml.YAMLError, text: str, filename: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        detail = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem)
        return Problem(filename, line, "yaml", f"malformed YAML: {detail}")
    position = getattr(exc, "position", None)
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
    reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
    return Problem(filename, line, "yaml", f"malformed YAML: {reason}")


def load_text(text: str, filename: str) -> list[Document]:
    """Parse every document of ``text``; raise SpecError listing all problems found."""
    problems: list[Problem] = []
    docs: list[Document] = []
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            loader.first_alias_line = None
            node = loader.get_node()
            doc = _check_document(node, loader, filename, index, problems)
            if doc is not None:
                docs.append(doc)
            index += 1
    except yaml.YAMLError as exc:
        problems.append(_yaml_error(exc, text, filename))
    except RecursionError:
        problems.append(Problem(filename, 1, "yaml", "malformed YAML: nested too deeply"))
    finally:
        loader.dispose()
    if not docs and not problems:
        problems.append(Problem(filename, 1, "(document)", "empty file: no documents"))
    if problems:
        raise SpecError(problems)
    return docs


def read_text_file(path: str | Path) -> str:
    """A YAML file's text; SpecError (file:1: (file): ...) when it cannot be read or is not UTF-8."""
    name = str(path)
    try:
        check_file_size(path)
        # utf-8-sig: editors on Windows like to prepend a byte-order mark.
        return Path(path).read_text(encoding="utf-8-sig")
    except TooLarge as exc:
        raise SpecError([Problem(name, 1, "(file)", str(exc))]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(name, 1, "(file)", f"not UTF-8 text: {exc.reason}")]) from None
    except OSError as exc:
        raise SpecError([Problem(name, 1, "(file)", f"cannot read file: {exc.strerror or exc}")]) from None


def load_file(path: str | Path) -> list[Document]:
    """Read and parse a YAML file; the Problem file names are ``str(path)``."""
    return load_text(read_text_file(path), str(path))
