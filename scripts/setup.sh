#!/bin/sh
# One-step, idempotent setup on a fresh Debian machine (root, only the npm registry and Debian's apt
# reachable, Node 20 preinstalled). Fast when everything is already in place.
#   sh scripts/setup.sh [--quiet]
set -eu
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "setup: $*"; }

NODE_VERSION=22.23.3
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64) node_arch=arm64 ;;
  *) echo "setup: unsupported CPU $(uname -m)" >&2; exit 1 ;;
esac

# 1. Node 22: a binary shipped inside the registry package node-linux-<arch>; no install scripts run.
toolchain="$root/.toolchain/node22"
if [ "$("$toolchain/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]; then
  say "installing Node $NODE_VERSION into .toolchain/node22"
  rm -rf "$toolchain"
  mkdir -p "$toolchain/bin"
  npm install --prefix "$toolchain" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "node-linux-$node_arch@$NODE_VERSION" >/dev/null
  ln -sf "../node_modules/node-linux-$node_arch/bin/node" "$toolchain/bin/node"
  "$toolchain/bin/node" --version >/dev/null
fi
PATH="$toolchain/bin:$PATH"
export PATH

# 2. npm dependencies from package-lock.json, reinstalled only when it, package.json or a patch in
#    patches/ changed (npm's postinstall applies the patches with patch-package; see patches/README.md).
#    `npm install` rather than `npm ci`: litesvm 1.5 lists platform packages at versions that were
#    never published for other platforms, which `npm ci` refuses as an out-of-sync lock file.
deps_hash() { cat package.json package-lock.json patches/*.patch | sha256sum | cut -d' ' -f1; }
if [ "$(cat node_modules/.bitflow-deps-hash 2>/dev/null || true)" != "$(deps_hash)" ]; then
  say "installing npm dependencies"
  # a patched package is installed afresh, so a changed patch applies to the original files
  for patch in patches/*.patch; do
    [ -e "$patch" ] || continue
    pkg=$(basename "$patch" .patch); pkg=${pkg%+*}
    rm -rf "node_modules/$(echo "$pkg" | tr + /)"
  done
  npm install --no-audit --no-fund --loglevel=error >/dev/null
  deps_hash > node_modules/.bitflow-deps-hash
fi

# 3. TypeScript build (incremental).
say "building TypeScript"
node node_modules/typescript/bin/tsc -p tsconfig.json

# 4. Docker engine on bitflow's own socket, and 5. the task runtime image (each a no-op when done).
qflag=
[ "$quiet" = 1 ] && qflag=--quiet
sh "$root/scripts/setup-docker.sh" $qflag
sh "$root/scripts/build-image.sh" $qflag

# 6. The settlement program (clang-19 + the project's linker; a no-op when nothing changed).
sh "$root/scripts/build-program.sh" $qflag

# 7. Debian's python3 with numpy on the host: the tests check that numpy reads what BitFlow writes.
if ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
  say "installing python3-numpy (apt)"
  if ! apt-cache show python3-numpy >/dev/null 2>&1; then apt-get -o DPkg::Lock::Timeout=600 update -qq; fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-numpy >/dev/null
fi

say "ready (node $(node --version))"
