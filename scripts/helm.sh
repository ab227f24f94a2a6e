#!/usr/bin/env bash
# Prints, as its last line, the path of an executable `helm` for the chart tests.
#
# $HELM wins when set (a helm you already have). Otherwise helm is built once from the
# Go module pinned in hack/helm/go.mod into a cache outside the repository, keyed by
# that version and the Go toolchain, and reused (as scripts/envtest-assets.sh does for
# the control-plane binaries).
set -euo pipefail

say() { printf 'helm: %s\n' "$*" >&2; }

if [[ -n "${HELM:-}" ]]; then
  [[ -x "$HELM" ]] || { say "HELM=$HELM is not an executable"; exit 1; }
  say "using HELM"
  printf '%s\n' "$HELM"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go "$HOME/go/bin/go"; do
    [[ -x "$candidate" ]] && PATH="$(dirname "$candidate"):$PATH" && break
  done
fi
if ! command -v go >/dev/null 2>&1; then
  say "neither HELM nor a Go toolchain is available."
  say "Install Go (https://go.dev/doc/install) or point HELM at a helm v4 binary."
  exit 1
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="$root/hack/helm"
version="$(awk '$1 == "helm.sh/helm/v4" || ($1 == "require" && $2 == "helm.sh/helm/v4") { print ($1 == "require" ? $3 : $2); exit }' "$module/go.mod")"
[[ -n "$version" ]] || { say "cannot read the pinned helm version from hack/helm/go.mod"; exit 1; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dpu-credential-webhook/helm/helm-${version}_$(go env GOVERSION)"

if [[ -x "$cache/helm" ]]; then
  say "reusing $cache"
  printf '%s\n' "$cache/helm"
  exit 0
fi

mkdir -p "$(dirname "$cache")"
staging="$(mktemp -d "$cache.tmp.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
started=$SECONDS
say "building helm $version from helm.sh/helm/v4/cmd/helm (first run only; a few minutes)"
# -p 2: the machines have two cores, and other work shares them. The version stamp is
# the one helm's own Makefile sets, so `helm version` names the release.
(cd "$module" && go build -p 2 -trimpath \
  -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$staging/helm" helm.sh/helm/v4/cmd/helm)
rm -rf "$cache"
mv "$staging" "$cache"
trap - EXIT
say "built helm $version in $((SECONDS - started))s, cached in $cache"
printf '%s\n' "$cache/helm"
