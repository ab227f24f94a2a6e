#!/usr/bin/env bash
# Prints, as its last line, a folder holding executable `etcd` and `kube-apiserver`
# (and `kubectl`) for the test control planes.
#
# $KUBEBUILDER_ASSETS wins when set (the envtest convention, e.g. from setup-envtest).
# Otherwise the binaries are built once from the pinned Go modules in hack/envtest/
# into a cache outside the repository, keyed by the pinned versions, and reused.
set -euo pipefail

say() { printf 'envtest-assets: %s\n' "$*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in etcd kube-apiserver; do
    if [[ ! -x "$KUBEBUILDER_ASSETS/$bin" ]]; then
      say "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable '$bin'"
      exit 1
    fi
  done
  say "using KUBEBUILDER_ASSETS"
  printf '%s\n' "$KUBEBUILDER_ASSETS"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go "$HOME/go/bin/go"; do
    [[ -x "$candidate" ]] && PATH="$(dirname "$candidate"):$PATH" && break
  done
fi
if ! command -v go >/dev/null 2>&1; then
  say "neither KUBEBUILDER_ASSETS nor a Go toolchain is available."
  say "Install Go (https://go.dev/doc/install) or point KUBEBUILDER_ASSETS at a folder"
  say "with etcd and kube-apiserver (setup-envtest use -p path)."
  exit 1
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The version a go.mod requires, inside or outside a require block.
module_version() { awk -v mod="$1" '$1 == mod || ($1 == "require" && $2 == mod) { print ($1 == "require" ? $3 : $2); exit }' "$2"; }
kube_version="$(module_version k8s.io/kubernetes "$root/hack/envtest/kube/go.mod")"
etcd_version="$(module_version go.etcd.io/etcd/server/v3 "$root/hack/envtest/etcd/go.mod")"
go_version="$(go env GOVERSION)"
[[ -n "$kube_version" && -n "$etcd_version" ]] || { say "cannot read the pinned versions from hack/envtest/*/go.mod"; exit 1; }
# "stamped": binaries built since the version is stamped in (older caches report v0.0.0-master).
key="kube-${kube_version}_etcd-${etcd_version}_${go_version}_stamped"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dpu-credential-webhook/envtest/$key"

if [[ -x "$cache/etcd" && -x "$cache/kube-apiserver" && -x "$cache/kubectl" ]]; then
  say "reusing $cache"
  printf '%s\n' "$cache"
  exit 0
fi

mkdir -p "$(dirname "$cache")"
staging="$(mktemp -d "$cache.tmp.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# Kubernetes' own build (hack/lib/version.sh) stamps the release into these
# variables; without them `kube-apiserver --version` and /version say v0.0.0-master.
kube_minor="${kube_version#v1.}"; kube_minor="${kube_minor%%.*}"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # name, module dir, package, extra ldflags
  local started=$SECONDS
  say "building $1 from $3 (first run only; this takes several minutes)"
  # -v names each package as it compiles: a count of them is the progress of a
  # long first build. Lines with a space or colon are compiler messages: show them.
  if ! (cd "$2" && go build -v -trimpath -ldflags="-s -w${4:-}" -o "$staging/$1" "$3") 2>&1 \
    | awk -v name="$1" '/[ :]/ { print > "/dev/stderr"; next }
        { if (++n % 200 == 0) printf "envtest-assets: %s: %d packages compiled\n", name, n > "/dev/stderr" }'; then
    say "building $1 failed"
    exit 1
  fi
  say "built $1 in $((SECONDS - started))s"
}

build etcd "$root/hack/envtest/etcd" .
build kube-apiserver "$root/hack/envtest/kube" k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build kubectl "$root/hack/envtest/kube" k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"

rm -rf "$cache"
mv "$staging" "$cache"
trap - EXIT
say "cached in $cache"
printf '%s\n' "$cache"
