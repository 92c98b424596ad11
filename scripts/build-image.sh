#!/bin/sh
# Builds the task runtime image bitflow/taskpack-python:<version> without any container registry:
# mmdebstrap (essential variant + python3 and the scientific stack) from the host's own apt sources,
# plus the BitFlow Python SDK from sandbox/python when it exists, then `docker import`.
# The build is skipped when its inputs (this script, the package set, the apt sources, the SDK files,
# the version) hash to the value recorded for an image that still exists in the engine.
# The image id is recorded in $BITFLOW_SANDBOX_STATE/taskpack-python.json; the runner reads it and
# refers to the image by id.
#   sh scripts/build-image.sh [--quiet] [--force]
set -eu
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
quiet=0
force=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --force) force=1 ;;
    *) echo "usage: sh scripts/build-image.sh [--quiet] [--force]" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "build-image: $*"; }
die() { echo "build-image: $*" >&2; exit 1; }

sock="${BITFLOW_DOCKER_DIR:-/run/bitflow-docker}/docker.sock"
state_dir=${BITFLOW_SANDBOX_STATE:-/var/lib/bitflow-sandbox}
record="$state_dir/taskpack-python.json"
packages="python3,python3-numpy,python3-scipy,python3-pandas,python3-h5py"
version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' package.json | head -n 1)
[ -n "$version" ] || die "cannot read the version from package.json"
tag="bitflow/taskpack-python:$version"
sdk_dir="sandbox/python"
sdk_pkg="$sdk_dir/bitflow_sdk"

client() {
  if [ -x /usr/bin/docker ]; then /usr/bin/docker -H "unix://$sock" "$@"; else docker -H "unix://$sock" "$@"; fi
}
[ -S "$sock" ] && client version >/dev/null 2>&1 || die "no Docker engine on $sock; run: npm run setup"

# apt sources of the host, one "deb <uri> <suite> <components...>" line per repository and suite,
# read through apt itself (never a hard-coded mirror). --no-release-info lists every configured
# target, also those whose lists were never downloaded.
arch=$(dpkg --print-architecture)
sources=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(ARCHITECTURE)' \
    'Target-Of: deb' 'Identifier: Packages' \
  | awk -v arch="$arch" '$4 == arch && $3 != "" { key = $1 " " $2; if (!(key in comps)) { order[++n] = key; comps[key] = $3 } else if (index(" " comps[key] " ", " " $3 " ") == 0) { comps[key] = comps[key] " " $3 } }
      END { for (i = 1; i <= n; i++) print "deb " order[i] " " comps[order[i]] }')
[ -n "$sources" ] || die "apt has no 'deb' sources for $arch (apt-get indextargets); configure /etc/apt/sources.list(.d)"

# Two layers: a base (mmdebstrap; depends on the package set and the apt sources) that takes a minute
# or more, and the SDK on top of it (seconds), so SDK edits do not re-bootstrap Debian.
script_hash=$(sha256sum < "$0" | cut -d' ' -f1)
base_hash=$(printf 'arch=%s\npackages=%s\nsources=%s\nscript=%s\n' "$arch" "$packages" "$sources" "$script_hash" | sha256sum | cut -d' ' -f1)
base_tag="bitflow/taskpack-python-base:$(printf '%s' "$base_hash" | cut -c1-16)"
sdk_hash=none
if [ -d "$sdk_pkg" ]; then
  sdk_hash=$(find "$sdk_pkg" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print \
    | LC_ALL=C sort | while IFS= read -r f; do printf '%s %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"; done \
    | sha256sum | cut -d' ' -f1)
fi
inputs_hash=$(printf 'version=%s\nbase=%s\nsdk=%s\n' "$version" "$base_hash" "$sdk_hash" | sha256sum | cut -d' ' -f1)

label_of() { client image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

if [ "$force" = 0 ] && [ -f "$record" ]; then
  recorded_id=$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$record")
  recorded_hash=$(sed -n 's/.*"inputsHash": *"\([^"]*\)".*/\1/p' "$record")
  if [ "$recorded_hash" = "$inputs_hash" ] && [ -n "$recorded_id" ] && [ "$(label_of "$recorded_id" org.bitflow.inputs-hash)" = "$inputs_hash" ]; then
    say "$tag up to date (${recorded_id#sha256:})"
    exit 0
  fi
fi

[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap root mode); re-run as root"
started=$(date +%s)
work=$(mktemp -d /var/tmp/bitflow-image.XXXXXX)
builder=
cleanup() {
  if [ -n "$builder" ]; then client rm -f "$builder" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. base layer
if [ "$force" = 1 ] || [ "$(label_of "$base_tag" org.bitflow.base-hash)" != "$base_hash" ]; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache show mmdebstrap >/dev/null 2>&1; then
      say "apt-get update"
      apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    fi
    say "installing mmdebstrap"
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends mmdebstrap >/dev/null
  fi
  suite=$(printf '%s\n' "$sources" | head -n 1 | cut -d' ' -f3)
  printf '%s\n' "$sources" > "$work/sources.list"
  say "bootstrapping $base_tag from the host's apt sources (suite $suite: $packages)"
  mmdebstrap --quiet --mode=root --variant=essential --format=tar \
    --include="$packages" \
    --aptopt='APT::Install-Recommends "false"' --aptopt='APT::Install-Suggests "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='mkdir -p "$1/task" "$1/out" "$1/in" && chmod 0755 "$1/task" "$1/out" "$1/in"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/* "$1"/root/.cache' \
    "$suite" "$work/rootfs.tar" - < "$work/sources.list" \
    || die "mmdebstrap failed"
  old_base=$(client image inspect --format '{{.Id}}' "$base_tag" 2>/dev/null || true)
  client import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.bitflow.base-hash=$base_hash" \
    "$work/rootfs.tar" "$base_tag" >/dev/null || die "docker import failed"
  rm -f "$work/rootfs.tar"
  if [ -n "$old_base" ]; then client image rm "$old_base" >/dev/null 2>&1 || true; fi
fi
base_id=$(client image inspect --format '{{.Id}}' "$base_tag") || die "base image $base_tag missing after the build"

# 2. SDK layer: copied into dist-packages (on python3's default path) and byte-compiled there, because
# the root file system is read-only at run time. Done in a throwaway container with no network.
mkdir -p "$work/sdk"
if [ -d "$sdk_pkg" ]; then
  cp -R "$sdk_pkg" "$work/sdk/"
  find "$work/sdk" -name '__pycache__' -prune -exec rm -rf {} + 2>/dev/null || true
  find "$work/sdk" -name '*.pyc' -exec rm -f {} + 2>/dev/null || true
  chmod -R a+rX,go-w "$work/sdk"
  step="cp -R /src/bitflow_sdk /usr/lib/python3/dist-packages/ && python3 -m compileall -q /usr/lib/python3/dist-packages/bitflow_sdk >/dev/null && cd / && python3 -c 'import bitflow_sdk'"
  sdk_note="with the SDK from $sdk_dir"
else
  step="true"
  sdk_note="$sdk_pkg not present yet, built without the SDK"
fi
chmod 755 "$work" "$work/sdk"
builder=$(client create --network none --user 0:0 --mount "type=bind,source=$work/sdk,target=/src,readonly" "$base_id" sh -c "$step") \
  || die "cannot create the SDK build container"
client start -a "$builder" || die "installing the SDK into the image failed (see the output above)"
[ "$(client inspect --format '{{.State.ExitCode}}' "$builder")" = 0 ] || die "installing the SDK into the image failed (see the output above)"
new_id=$(client commit \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'USER 65534:65534' \
  --change 'WORKDIR /task' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.bitflow.image=taskpack-python org.bitflow.version=$version org.bitflow.inputs-hash=$inputs_hash org.bitflow.base-hash=$base_hash org.bitflow.sdk-hash=$sdk_hash" \
  "$builder" "$tag") || die "docker commit failed"
client rm -f "$builder" >/dev/null 2>&1 || true
builder=
new_id=$(client image inspect --format '{{.Id}}' "$new_id")
size=$(client image inspect --format '{{.Size}}' "$new_id")

old_id=$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$record" 2>/dev/null || true)
mkdir -p "$state_dir"
tmp_record="$record.tmp.$$"
cat > "$tmp_record" <<JSON
{
  "image": "$tag",
  "id": "$new_id",
  "base": "$base_id",
  "inputsHash": "$inputs_hash",
  "sdkHash": "$sdk_hash",
  "packages": "$packages",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
mv "$tmp_record" "$record"
# drop the superseded image unless a container still uses it (the base stays)
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] && [ "$old_id" != "$base_id" ]; then client image rm "$old_id" >/dev/null 2>&1 || true; fi
say "built $tag ${new_id#sha256:} ($((size / 1048576)) MiB, $sdk_note) in $(( $(date +%s) - started ))s; recorded in $record"
