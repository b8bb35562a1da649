#!/usr/bin/env bash
# Lint the chart and validate what it renders against the Kubernetes schemas, once with the
# default values and once per helm/reconciler/ci/*-values.yaml (the value sets chart-testing uses).
#
#   bash helm/check.sh            # from anywhere; needs kubernetes-validate (pip install -e '.[test]')
#   K8S_VERSION=1.29.0 bash helm/check.sh
#
# Uses `helm` (lint --strict, template --include-crds) when it is on PATH. Without helm, falls back
# to helm/render_with_sdk.py (Helm's engine from the helm-sdkpy wheel) when that imports, and else
# stops with exit 2 and says so: this script never pretends to have rendered the chart.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$root/helm/reconciler"
k8s_version="${K8S_VERSION:-1.30.0}"
python="${PYTHON:-python3}"

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "check.sh: kubernetes-validate not found: pip install kubernetes-validate (in the project's test extras)" >&2
  exit 2
fi

value_sets=("")
for f in "$chart"/ci/*-values.yaml; do value_sets+=("$f"); done

validate() {  # stdin: manifests
  kubernetes-validate --strict --quiet -k "$k8s_version" -
}

if command -v helm >/dev/null 2>&1; then
  echo "check.sh: $(helm version --short)"
  for values in "${value_sets[@]}"; do
    args=()
    [ -n "$values" ] && args=(-f "$values")
    echo "== helm lint / template ${values:-(default values)}"
    helm lint --strict "$chart" "${args[@]}"
    helm template reconciler "$chart" --namespace reconciler --include-crds "${args[@]}" | validate
  done
elif "$python" -c 'import helm_sdkpy' >/dev/null 2>&1; then
  echo "check.sh: no helm binary; rendering with Helm's engine from helm-sdkpy (helm/render_with_sdk.py)"
  kubernetes-validate --strict --quiet -k "$k8s_version" "$chart"/crds/*.yaml
  for values in "${value_sets[@]}"; do
    args=()
    [ -n "$values" ] && args=(-f "$values")
    echo "== lint / render ${values:-(default values)}"
    "$python" "$root/helm/render_with_sdk.py" "$chart" --namespace reconciler "${args[@]}" | validate
  done
else
  echo "check.sh: helm is not installed (and helm_sdkpy is not importable), so the chart was NOT linted or" >&2
  echo "rendered. Install helm (https://helm.sh/docs/intro/install/) and run this again." >&2
  echo "tests/test_helm_chart.py still checks values/schema, template references and the CRDs without helm." >&2
  exit 2
fi
echo "check.sh: chart OK (${#value_sets[@]} value sets, Kubernetes $k8s_version, strict)"
