#!/usr/bin/env bash
# Roll out one release to the cluster, in the order the platform needs:
#   1. settings (Namespace, ServiceAccount, ConfigMap) and the release Job;
#   2. wait until `tenants migrate` completed (public, every tenant, the template);
#   3. only then the Deployments and the rest: new pods serve migrated schemas.
# A failed Job stops here with the old release still serving (docs/deploy.md).
#   deploy/k8s/release.sh <image tag> [overlay folder]
set -euo pipefail
tag=${1:?usage: release.sh <image tag> [overlay]}
overlay=${2:-$(dirname "$0")/overlays/production}
image=${PLATFORM_IMAGE:-ghcr.io/example/tenant-platform}
namespace=${NAMESPACE:-tenant-platform}

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
(cd "$overlay" && kustomize edit set image "$image=$image:$tag" 2>/dev/null) ||
  echo "note: no kustomize binary; using the tag written in $overlay" >&2
kubectl kustomize "$overlay" >"$rendered"

kubectl -n "$namespace" delete job platform-release --ignore-not-found --wait=true
kubectl apply -f "$rendered" -l 'app.kubernetes.io/component in (config, release)'
if ! kubectl -n "$namespace" wait --for=condition=complete job/platform-release --timeout=2h; then
  kubectl -n "$namespace" logs job/platform-release --tail=50 >&2 || true
  echo "release Job failed: the previous release keeps serving; see docs/deploy.md" >&2
  exit 1
fi
kubectl apply -f "$rendered"
for deployment in platform-web platform-worker platform-platform-worker platform-beat; do
  kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout=15m
done
