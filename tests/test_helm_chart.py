"""The Helm chart (helm/reconciler), checked without a helm binary.

What is checked here, and how:
- Chart.yaml and values.yaml parse; appVersion is pyproject's version.
- values.yaml (and each ci/*-values.yaml merged over it, as helm merges) validates against
  values.schema.json with jsonschema (draft-07, what helm enforces); bad values are rejected;
  the schema describes every key of values.yaml.
- The templates are NOT rendered here (no template engine is written for the test). Instead:
  every `.Values.x.y` they use exists in values.yaml and every value is used; `include`d names
  are defined; if/range/with/define blocks balance `end`s; the Deployment's probes, Datadog
  annotation (valid JSON once each `{{ ... }}` is replaced by a placeholder) and secret
  references are read from the template text.
- The CRDs in crds/ are plain YAML (helm never templates crds/): validated against the official
  Kubernetes schemas with kubernetes-validate (strict).
- Rendered manifests are validated only where Helm's engine is available (a `helm` binary, or the
  helm-sdkpy wheel through helm/render_with_sdk.py); otherwise that test is skipped, visibly.
  helm/check.sh does the same from a shell.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "reconciler"
TEMPLATES = CHART / "templates"
K8S_VERSIONS = ("1.27.0", "1.28.0")  # oldest and newest that kubernetes-validate>=1.28 ships

CRD_KINDS = {
    "Workflow": ("workflows", "rwf", "Namespaced"),
    "WorkflowTemplate": ("workflowtemplates", "rwftmpl", "Namespaced"),
    "ClusterWorkflowTemplate": ("clusterworkflowtemplates", "rcwftmpl", "Cluster"),
    "CronWorkflow": ("cronworkflows", "rcwf", "Namespaced"),
    "Lock": ("locks", None, "Namespaced"),
    "Environment": ("environments", "renv", "Namespaced"),
    "WebhookDelivery": ("webhookdeliveries", None, "Namespaced"),
}


def load(path: Path):
    return yaml.safe_load(path.read_text())


def merged(base: dict, override: dict) -> dict:
    """Helm's coalescing of user values over the chart's: maps merge deeply, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="module")
def values() -> dict:
    return load(CHART / "values.yaml")


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def schema_errors(schema: dict, values: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(values)]


def template_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TEMPLATES.iterdir()) if p.suffix in (".yaml", ".tpl", ".txt")}


# --- Chart.yaml ---------------------------------------------------------------------------------

def test_chart_metadata_matches_pyproject():
    chart = load(CHART / "Chart.yaml")
    version = re.search(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert chart["apiVersion"] == "v2"
    assert chart["type"] == "application"
    assert chart["name"] == "reconciler"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == version
    assert {p.name for p in TEMPLATES.iterdir()} >= {
        "_helpers.tpl", "deployment.yaml", "service.yaml", "serviceaccount.yaml", "rbac.yaml",
        "configmap.yaml", "pvc.yaml", "secret.yaml", "NOTES.txt"}


# --- values and their schema --------------------------------------------------------------------

def test_schema_is_draft7_and_closed_at_the_top(schema):
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False


def test_default_values_validate(values, schema):
    assert schema_errors(schema, values) == []
    assert values["replicaCount"] == 1
    assert values["kubernetes"]["enabled"] is False
    assert values["persistence"]["enabled"] is False
    assert values["metrics"]["datadog"]["enabled"] is True


@pytest.mark.parametrize("path", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_ci_value_sets_validate(values, schema, path):
    assert schema_errors(schema, merged(values, load(path))) == []


@pytest.mark.parametrize("override, where", [
    ({"replicaCount": "two"}, "replicaCount"),
    ({"replicas": 2}, "replicas"),  # unknown top-level key
    ({"replicaCount": 2}, "replicaCount"),  # >1 only with kubernetes.enabled
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
    ({"image": {"tagg": "1"}}, "tagg"),  # unknown nested key
    ({"config": {"port": 70000}}, "config.port"),
    ({"config": {"isolation": "docker"}}, "config.isolation"),
    ({"config": {"pollInterval": 0}}, "config.pollInterval"),
    ({"git": {"auth": "ssh"}}, "git.existingSecret"),  # credentials need their Secret
    ({"git": {"auth": "https", "existingSecret": "s", "https": {"username": "a'b"}}}, "git.https.username"),
    ({"persistence": {"size": "lots"}}, "persistence.size"),
    ({"resources": {"limits": {"memory": "1 GB"}}}, "resources.limits.memory"),
    ({"kubernetes": {"namespaces": ["Not_A_Namespace"]}}, "kubernetes.namespaces.0"),
    ({"service": {"type": "Ingress"}}, "service.type"),
    ({"apiToken": {"create": False}}, "apiToken"),  # the daemon refuses 0.0.0.0 without a token
])
def test_bad_values_are_rejected(values, schema, override, where):
    errors = schema_errors(schema, merged(values, override))
    assert errors, f"{override} was accepted"
    assert any(where.split(".")[0] in e for e in errors), errors


def test_standbys_are_allowed_with_the_kubernetes_backend(values, schema):
    assert schema_errors(schema, merged(values, {"replicaCount": 2, "kubernetes": {"enabled": True}})) == []


def _walk(values: dict, node: dict, path: str, missing: list[str]) -> None:
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        props = node.get("properties")
        if props is None:
            # A Kubernetes object passed through as it is (securityContext, affinity, ...): open.
            assert node.get("additionalProperties") is not False, here
            continue
        if key not in props:
            missing.append(here)
            continue
        child = props[key]
        if isinstance(value, dict) and child.get("type") == "object":
            _walk(value, child, here, missing)


def test_schema_describes_every_value(values, schema):
    missing: list[str] = []
    _walk(values, schema, "", missing)
    assert missing == []
    assert set(schema["properties"]) == set(values), "schema and values.yaml have different top-level keys"


# --- templates, read as text (not rendered) ------------------------------------------------------

VALUE_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _value_refs() -> dict[str, set[str]]:
    return {name: {m.group(1)[1:] for m in VALUE_REF.finditer(text)} for name, text in template_texts().items()}


def _exists(values: dict, dotted: str) -> bool:
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_templates_reference_only_existing_values(values):
    refs = _value_refs()
    assert refs["deployment.yaml"], "the regex found nothing: the test would be vacuous"
    unknown = {f"{name}: .Values.{ref}" for name, found in refs.items() for ref in found if not _exists(values, ref)}
    assert unknown == set()


def _leaves(values: dict, prefix: str = ""):
    for key, value in values.items():
        here = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            yield from _leaves(value, here)
        else:
            yield here


def test_every_value_is_used_by_a_template(values):
    used = set().union(*_value_refs().values())
    unused = [leaf for leaf in _leaves(values)
              if not any(leaf == ref or leaf.startswith(ref + ".") for ref in used)]
    assert unused == []


def test_template_blocks_balance_and_includes_are_defined():
    texts = template_texts()
    defined = set(re.findall(r'{{-?\s*define\s+"([^"]+)"', texts["_helpers.tpl"]))
    for name, text in texts.items():
        actions = re.findall(r"{{-?\s*(.*?)\s*-?}}", text, re.S)
        assert text.count("{{") == text.count("}}") == len(actions), name
        opened = sum(1 for a in actions if re.match(r"(if|range|with|define)\b", a))
        closed = sum(1 for a in actions if re.match(r"end\b", a))
        assert opened == closed, f"{name}: {opened} blocks opened, {closed} ended"
        for included in re.findall(r'include\s+"([^"]+)"', text):
            assert included in defined, f"{name} includes undefined {included!r}"


def _deployment() -> str:
    return (TEMPLATES / "deployment.yaml").read_text()


def test_probes_point_at_healthz_and_readyz():
    text = _deployment()
    liveness = re.search(r"livenessProbe:\s*\n\s*httpGet:\s*\n\s*path: (\S+)\s*\n\s*port: (\S+)", text)
    readiness = re.search(r"readinessProbe:\s*\n\s*httpGet:\s*\n\s*path: (\S+)\s*\n\s*port: (\S+)", text)
    assert liveness.groups() == ("/healthz", "http")
    assert readiness.groups() == ("/readyz", "http")
    assert re.search(r"- name: http\s*\n\s*containerPort: {{ .Values.config.port }}", text)
    assert "targetPort: http" in (TEMPLATES / "service.yaml").read_text()


def _json_with_placeholders(text: str) -> str:
    """Replace each {{ ... }} by a placeholder that keeps the JSON shape: inside a string by a word,
    outside one by a string (a template there renders a JSON value, e.g. toJson of a list)."""
    out, in_string, i = [], False, 0
    while i < len(text):
        if text.startswith("{{", i):
            end = text.index("}}", i) + 2
            out.append("TEMPLATE" if in_string else '"TEMPLATE"')
            i = end
            continue
        ch = text[i]
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            in_string = not in_string
        out.append(ch)
        i += 1
    return "".join(out)


def test_datadog_autodiscovery_annotation_is_valid_json():
    text = _deployment()
    block = re.search(r"ad\.datadoghq\.com/(\w+)\.checks: \|\n(.*?)\n\s*{{- end }}", text, re.S)
    assert block, "no Datadog checks annotation"
    container, body = block.group(1), block.group(2)
    assert re.search(rf"containers:\s*\n\s*- name: {container}\n", text), "annotation must name the container"
    checks = json.loads(_json_with_placeholders(body))
    instance = checks["openmetrics"]["instances"][0]
    assert instance["openmetrics_endpoint"] == "http://%%host%%:TEMPLATE/metrics"
    assert "{{ .Values.config.port }}/metrics" in body
    assert '"namespace": "{{ .Values.metrics.datadog.namespace }}"' in body
    assert '"metrics": {{ toJson .Values.metrics.datadog.metrics }}' in body
    # v2 annotations (one .checks JSON), histograms as distributions so percentiles work in Datadog
    assert instance["histogram_buckets_as_distributions"] is True and instance["raw_metric_prefix"] == "reconciler_"
    assert "annotations v1" not in text and "annotations v2" in text


def test_datadog_defaults(values):
    datadog = values["metrics"]["datadog"]
    assert datadog["namespace"] == "reconciler"
    assert datadog["metrics"] == [".*"]  # matched after raw_metric_prefix strips reconciler_
    assert values["config"]["port"] == 8080 == values["service"]["port"]


def test_secrets_come_from_secret_key_refs_and_config_from_the_configmap():
    text = _deployment()
    for env, ref in (("RECONCILER_API_TOKEN", "apiToken"), ("RECONCILER_WEBHOOK_SECRET", "webhookSecret")):
        assert re.search(rf"- name: {env}\n\s*valueFrom:\n\s*secretKeyRef:\n\s*name: {{{{ \. }}}}\n"
                         rf"\s*key: {{{{ \$\.Values\.{ref}\.key }}}}", text), env
    assert re.search(r"- name: RECONCILER_CONFIG\n\s*value: /etc/reconciler/config/config.yaml", text)
    assert re.search(r"- name: config\n\s*mountPath: /etc/reconciler/config\n", text)
    assert "config.yaml: |" in (TEMPLATES / "configmap.yaml").read_text()
    assert "UserKnownHostsFile=%s/known_hosts" in text and '$gitDir := "/etc/reconciler/git"' in text
    assert re.search(r"- name: data\n\s*mountPath: /var/lib/reconciler", text)
    assert re.search(r"- name: tmp\n\s*mountPath: /tmp", text)


def test_security_defaults(values):
    pod, container = values["podSecurityContext"], values["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001
    assert container["runAsNonRoot"] is True
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert set(values["resources"]) == {"requests", "limits"}
    assert set(values["resources"]["requests"]) == set(values["resources"]["limits"]) == {"cpu", "memory"}


def test_rbac_only_with_the_kubernetes_backend():
    text = (TEMPLATES / "rbac.yaml").read_text()
    assert "{{- if and .Values.kubernetes.enabled .Values.rbac.create }}" in text
    for resource in ("workflows", "workflowtemplates", "cronworkflows", "clusterworkflowtemplates",
                     '"pods"', '"pods/log"', '"configmaps"', '"leases"', '"events"', '"coordination.k8s.io"'):
        assert resource.strip('"') in text, resource


# --- the daemon accepts what the chart passes it -----------------------------------------------------

CHART_FLAGS = ("--log-level", "--log-format", "--isolation", "--grace", "--max-running")
CHART_ENV = ("RECONCILER_CONFIG", "RECONCILER_HOME", "RECONCILER_LISTEN", "RECONCILER_REPO",
             "RECONCILER_POLL_INTERVAL", "RECONCILER_API_TOKEN", "RECONCILER_API_OPEN_READS",
             "RECONCILER_WEBHOOK_SECRET")


def test_chart_flags_are_options_of_reconciler_up(values):
    from reconciler.cli.main import cli

    text = _deployment()
    assert re.search(r"args:\n\s*- up\n", text)
    options = {opt for param in cli.commands["up"].params for opt in param.opts}
    for flag in CHART_FLAGS:
        assert f'"{flag}=' in text, flag
        assert flag in options, f"reconciler up has no {flag}"
    for env in CHART_ENV:
        assert f"- name: {env}\n" in text, env
    up = cli.commands["up"]
    choices = {p.name: list(p.type.choices) for p in up.params if hasattr(p.type, "choices")}
    assert values["config"]["isolation"] in choices["isolation"]
    assert values["config"]["logFormat"] in choices["log_format"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_daemon_started_as_the_chart_starts_it_answers_the_probes(values, tmp_path):
    """`reconciler up` with the Deployment's args and env (default values), as in the pod: listening on
    0.0.0.0 with a token; /healthz and /readyz answer on the probes' paths."""
    import time
    import urllib.error
    import urllib.request

    pytest.importorskip("fastapi")
    port = _free_port()
    config = values["config"]
    env = {**os.environ, "RECONCILER_HOME": str(tmp_path / "home"), "RECONCILER_LISTEN": f"0.0.0.0:{port}",
           "RECONCILER_CONFIG": str(tmp_path / "config.yaml"), "RECONCILER_POLL_INTERVAL": str(config["pollInterval"]),
           "RECONCILER_API_TOKEN": "t0ken", "HOME": str(tmp_path)}
    (tmp_path / "config.yaml").write_text("listen: 0.0.0.0:8080\n")
    args = ["up", f"--log-level={config['logLevel']}", f"--log-format={config['logFormat']}",
            f"--isolation={config['isolation']}", f"--grace={config['grace']}", "--max-running=5"]
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        status: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and len(status) < 2:
            for path in ("/healthz", "/readyz"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                        status[path] = resp.status
                except urllib.error.HTTPError as exc:
                    status[path] = exc.code
                except OSError:
                    time.sleep(0.2)
        assert proc.poll() is None, proc.communicate(timeout=10)[1][-2000:]
        assert status.get("/healthz") == 200
        assert status.get("/readyz") in (200, 503)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- CRDs: plain YAML, validated against the Kubernetes schemas -----------------------------------

def _crds() -> list[dict]:
    docs = []
    for path in sorted((CHART / "crds").glob("*.yaml")):
        assert "{{" not in path.read_text(), f"{path.name}: helm never templates crds/"
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_crds_validate_against_kubernetes_schemas(version):
    crds = _crds()
    assert len(crds) == len(CRD_KINDS)
    for crd in crds:
        kubernetes_validate.validate(crd, version, strict=True)


def test_crds_shape():
    seen = {}
    for crd in _crds():
        spec = crd["spec"]
        kind = spec["names"]["kind"]
        plural, short, scope = CRD_KINDS[kind]
        assert crd["metadata"]["name"] == f"{plural}.reconciler.io"
        assert spec["group"] == "reconciler.io"
        assert spec["scope"] == scope
        assert spec["names"]["plural"] == plural
        assert spec["names"].get("shortNames") == ([short] if short else None)
        (version,) = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        props = version["schema"]["openAPIV3Schema"]["properties"]
        for part in ("spec", "status"):
            assert props[part] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
        assert columns["Age"] == ".metadata.creationTimestamp"
        if kind == "Workflow":
            assert columns["Phase"] == ".status.phase"
        # Argo's kinds mirror Argo's CRDs (no status subresource); the project's own kinds have it.
        assert ("subresources" in version) == (kind in ("Lock", "Environment", "WebhookDelivery"))
        seen[kind] = crd
    assert set(seen) == set(CRD_KINDS)


def test_chart_crds_are_what_reconciler_crds_prints():
    printed = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "crds"], capture_output=True, text=True,
                             check=True).stdout
    assert sorted(_crds(), key=lambda c: c["metadata"]["name"]) == sorted(
        (d for d in yaml.safe_load_all(printed) if d), key=lambda c: c["metadata"]["name"])


def test_a_validator_that_passes_everything_would_be_caught():
    for breakage in ({"versions": "v1alpha1"}, {"preserveUnknownFields": "yes"}, {"shortnames": ["x"]}):
        crd = copy.deepcopy(_crds()[0])
        crd["spec"].update(breakage)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(crd, K8S_VERSIONS[-1], strict=True)


# --- the check script and, where Helm's engine exists, the rendered chart -------------------------

def _helm_sdkpy_importable() -> bool:
    return subprocess.run([sys.executable, "-c", "import helm_sdkpy"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(bool(shutil.which("helm")), reason="helm is here: the rendered tests (-m helm) run instead")
def test_check_script_says_so_when_helm_is_missing(tmp_path):
    script = ROOT / "helm" / "check.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin", "PYTHON": sys.executable}
    assert shutil.which("kubernetes-validate", path=env["PATH"]), "kubernetes-validate is a test dependency"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert "helm is not installed" in done.stderr and "NOT linted or" in done.stderr


def _render(values_file: Path | None) -> str:
    extra = ["-f", str(values_file)] if values_file else []
    if shutil.which("helm"):
        cmd = ["helm", "template", "reconciler", str(CHART), "--namespace", "reconciler", *extra]
    elif _helm_sdkpy_importable():
        cmd = [sys.executable, str(ROOT / "helm" / "render_with_sdk.py"), str(CHART), "--namespace", "reconciler", *extra]
    else:
        raise AssertionError("neither helm nor helm_sdkpy here: run these (-m helm) where helm exists")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.helm
@pytest.mark.parametrize("values_file", [None, *sorted((CHART / "ci").glob("*-values.yaml"))],
                         ids=lambda p: p.name if p else "default")
def test_rendered_manifests_validate(values_file):
    docs = [d for d in yaml.safe_load_all(_render(values_file)) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= kinds
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    checks = pod["metadata"]["annotations"].get("ad.datadoghq.com/reconciler.checks")
    if checks:
        instance = json.loads(checks)["openmetrics"]["instances"][0]
        assert instance == {"openmetrics_endpoint": "http://%%host%%:8080/metrics", "namespace": "reconciler",
                            "raw_metric_prefix": "reconciler_", "histogram_buckets_as_distributions": True,
                            "metrics": [".*"]}
    (container,) = pod["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.yaml"])
    assert config["listen"] == "0.0.0.0:8080"
