#!/usr/bin/env bash
# make manifests-check: render and validate the deployment files.
#   1. compose.yaml            podman-compose config (with deploy/compose/.env.example), and
#                              a missing secret must stop it
#   2. deploy/compose/Caddyfile caddy validate, where a caddy binary is installed
#   3. deploy/k8s              render base and every overlay with kustomize (kubectl's
#                              built-in kustomize, or a kustomize binary), validate the
#                              output against the Kubernetes schemas (kubernetes-validate,
#                              strict) and scan it with checkov (each skip carries its
#                              reason in a checkov.io/skip annotation)
# The validators live in their own virtualenv (.venv-manifests, pinned below), not in
# requirements.lock: checkov pins older boto3, botocore, packaging and networkx than the platform's.
# Offline-safe: only the package index is reached, once, to fill that virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

# podman-compose renders compose.yaml through podman itself: install it where it is missing,
# as `make image` does (Debian's package; no daemon needed to render).
if ! command -v podman >/dev/null; then
  echo "[manifests] installing podman from Debian"
  apt-get install -y -qq podman >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq podman >/dev/null; }
fi

VENV=.venv-manifests
PINS="checkov==3.3.30 kubernetes-validate==1.37.0 podman-compose==1.6.0"
K8S_VERSION=${K8S_VERSION:-1.31}
stamp="$VENV/.installed-$(echo "$PINS" | cksum | cut -d' ' -f1)"
if [ ! -e "$stamp" ]; then
  echo "[manifests] installing the validators into $VENV (first run: about a minute)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PINS \
    >"$VENV/pip.log" 2>&1; then
    grep -v "^WARNING: Location" "$VENV/pip.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
BIN=$VENV/bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== compose.yaml: podman-compose config"
"$BIN/podman-compose" -f compose.yaml --env-file deploy/compose/.env.example config >"$out/compose.yaml"
services=$("$BIN/python" -c 'import sys, yaml; print(" ".join(sorted(yaml.safe_load(open(sys.argv[1]))["services"])))' "$out/compose.yaml")
echo "   services: $services"
: >"$out/empty.env"
if "$BIN/podman-compose" -f compose.yaml --env-file "$out/empty.env" config >/dev/null 2>&1; then
  echo "compose.yaml: accepted an env file without secrets; every secret must be required" >&2
  exit 1
fi
echo "   refuses to render without the secrets: ok"

echo "== deploy/compose/Caddyfile"
if command -v caddy >/dev/null; then
  ROOT_DOMAIN=example.com ACME_EMAIL=ops@example.com \
    caddy validate --adapter caddyfile --config deploy/compose/Caddyfile 2>&1 | tail -1
else
  echo "   skipped: no caddy binary here (apt-get install caddy to check it)"
fi

echo "== deploy/k8s: render"
if command -v kubectl >/dev/null; then
  render() { kubectl kustomize "$1"; }
  echo "   with kubectl kustomize ($(kubectl version --client 2>/dev/null | grep -i kustomize || echo kustomize))"
elif command -v kustomize >/dev/null; then
  render() { kustomize build "$1"; }
  echo "   with kustomize build ($(kustomize version))"
else
  render() { return 1; }
fi
targets=(deploy/k8s/base deploy/k8s/overlays/*)
rendered=()
for target in "${targets[@]}"; do
  name=$(basename "$target")
  if render "$target" >"$out/$name.yaml" 2>"$out/$name.err"; then
    echo "   $target: $(grep -c '^kind:' "$out/$name.yaml") resources"
    rendered+=("$out/$name.yaml")
  elif command -v kubectl >/dev/null || command -v kustomize >/dev/null; then
    cat "$out/$name.err" >&2
    exit 1
  else
    # No renderer on this machine: validate the resource files one by one (patches and
    # generators are NOT checked this way; say so loudly).
    echo "   WARNING: no kustomize here; validating $target's resource files individually" >&2
    "$BIN/python" - "$target" "$out/$name.yaml" <<'PY'
import pathlib, sys, yaml
folder = pathlib.Path(sys.argv[1])
kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
docs = []
for resource in kustomization.get("resources", []):
    path = folder / resource
    if path.is_file():
        docs.append(path.read_text())
pathlib.Path(sys.argv[2]).write_text("\n---\n".join(docs))
PY
    rendered+=("$out/$name.yaml")
  fi
done

echo "== deploy/k8s: kubernetes-validate (strict, Kubernetes $K8S_VERSION)"
"$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${rendered[@]}"
echo "   ok"

echo "== deploy/k8s: checkov"
for file in "${rendered[@]}"; do
  echo "   $(basename "$file" .yaml):"
  "$BIN/checkov" --quiet --compact --skip-download --framework kubernetes -f "$file" |
    sed 's/^/     /'
done
echo "manifests-check: ok"
