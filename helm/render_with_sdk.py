"""Lint and render the chart with Helm's own engine where no `helm` binary is at hand.

`helm-sdkpy` (PyPI; needs Python >= 3.12 by its metadata, ships Helm v4's Go library as a shared
object) exposes `helm lint` but not `helm template`. This script:

1. copies the chart to a temporary folder and writes the user values (-f, merged over values.yaml
   as helm merges them: maps deep, lists replaced) into the copy's values.yaml;
2. runs Helm's lint on the copy (values.schema.json enforced, every template rendered and parsed);
3. copies templates/*.yaml to a non-template folder of the copy and adds one template that renders
   each of them with `tpl` (Helm's own template engine, the same functions and helpers) and hands
   the result back through `fail`, whose message the library logs: that text is printed.

The output is what `helm template RELEASE CHART -n NAMESPACE -f VALUES` prints, rendered by
Helm's engine, except for the `# Source:` lines. Lint's release name is fixed by Helm
("test-release"). Prefer a real `helm template` where helm exists (helm/check.sh does).

Usage: python helm/render_with_sdk.py CHART_DIR [-f VALUES.yaml] [--namespace NS] [--lint-only]
Exit: 0 rendered, 1 lint errors, 3 helm_sdkpy is not importable.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

DUMP_TEMPLATE = """{{- $ctx := merge (dict "Release" (merge (dict "Namespace" %(ns)s) .Release)) . }}
{{- $out := "" }}
{{- range $path, $_ := .Files.Glob "__render__/*.yaml" }}
{{- $out = printf "%%s\\n---\\n# Source: %%s\\n%%s" $out (base $path) (tpl ($.Files.Get $path) $ctx) }}
{{- end }}
{{- fail (printf "RENDERBEGIN%%sRENDEREND" $out) }}
"""


def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _prepare(chart: Path, values_files: list[str]) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="reconciler-chart-")) / chart.name
    shutil.copytree(chart, dest)
    values = yaml.safe_load((dest / "values.yaml").read_text()) or {}
    for name in values_files:
        values = merge(values, yaml.safe_load(Path(name).read_text()) or {})
    (dest / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return dest


def _lint(chart: Path) -> dict:
    import helm_sdkpy

    config = helm_sdkpy.Configuration(namespace="default")
    return asyncio.run(helm_sdkpy.Lint(config).run(str(chart)))


def _child(chart: str) -> None:
    """Runs in a subprocess: the Go library logs the `fail` message on this process's stderr."""
    print(json.dumps(_lint(Path(chart))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart")
    parser.add_argument("-f", "--values", action="append", default=[])
    parser.add_argument("--namespace", default="reconciler")
    parser.add_argument("--lint-only", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.chart)
        return 0
    try:
        import helm_sdkpy  # noqa: F401
    except ImportError:
        print("helm_sdkpy is not importable (pip install helm-sdkpy, Python >= 3.12)", file=sys.stderr)
        return 3

    copy_dir = _prepare(Path(args.chart), args.values)
    try:
        result = _lint(copy_dir)
        errors = [m for m in result.get("Messages") or [] if m.get("Severity", 0) >= 3]
        if errors:
            # helm_sdkpy serialises the Go errors as {}: say where, and rerun helm lint for the text.
            print(f"helm lint: {len(errors)} error(s) in: " + ", ".join(m["Path"] for m in errors), file=sys.stderr)
            return 1
        if args.lint_only:
            print("helm lint: 0 errors", file=sys.stderr)
            return 0
        (copy_dir / "__render__").mkdir()
        for template in sorted((copy_dir / "templates").glob("*.yaml")):
            shutil.copy(template, copy_dir / "__render__" / template.name)
        (copy_dir / "templates" / "zz-render.yaml").write_text(DUMP_TEMPLATE % {"ns": json.dumps(args.namespace)})
        child = subprocess.run([sys.executable, __file__, "--child", str(copy_dir)],
                               capture_output=True, text=True, check=False)
        found = re.search(r'message="RENDERBEGIN(.*?)RENDEREND"', child.stdout + child.stderr, re.S)
        if not found:
            print("could not render:\n" + child.stdout + child.stderr, file=sys.stderr)
            return 1
        print(json.loads('"' + found.group(1) + '"'))
        return 0
    finally:
        shutil.rmtree(copy_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
