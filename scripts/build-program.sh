#!/bin/sh
# Builds the settlement program into an SBPFv0 shared object:
#   C (programs/settlement/src) --clang-19--> BPF objects --programs/linker/link.ts-->
#   programs/settlement/build/bitflow_settlement.so
# The project's linker merges the objects itself: `bpf-ld -r` leaves stale addends in section-relative
# lddw relocations when it merges .rodata of several objects (see programs/linker/link.ts).
# binutils-bpf is still installed for bpf-objdump/bpf-readelf, which the linker tests use to check
# the output with an independent ELF reader.
# Installs clang-19 and binutils-bpf from Debian when missing. Idempotent: when neither the sources,
# the linker, this script nor the compiler changed, it does nothing (hash stamp).
#   sh scripts/build-program.sh [--quiet] [--force]
set -eu
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
quiet=0
force=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --force) force=1 ;;
    *) echo "build-program: unknown option $arg" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "build-program: $*"; }

src=programs/settlement/src
out=programs/settlement/build
so="$out/bitflow_settlement.so"
stamp="$out/.stamp"
CLANG=clang-19
BPF_READELF=bpf-readelf
CFLAGS="-target bpfel -mcpu=v2 -O2 -ffreestanding -fno-builtin -fno-stack-protector -g0 -std=c11 -Wall -Wextra -Werror -mllvm -bpf-stack-size=4096"

# 1. Toolchain from Debian, installed only when missing; `apt-get update` only when apt does not know
#    a package yet.
missing=""
command -v "$CLANG" >/dev/null 2>&1 || missing="$missing clang-19"
command -v "$BPF_READELF" >/dev/null 2>&1 || missing="$missing binutils-bpf"
if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
      echo "build-program: needs$missing (Debian packages); run as root or install them: apt-get install$missing" >&2
      exit 1
    fi
  fi
  for pkg in $missing; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
      say "apt does not know $pkg yet: apt-get update"
      $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
      break
    fi
  done
  say "installing$missing"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

# 2. Hash stamp over everything that determines the output.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9 # one build at a time (parallel test workers may all ask for one)
sources=$(find "$src" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
inputs_hash=$( {
  for f in $sources; do echo "$f"; cat "$f"; done
  cat programs/linker/link.ts "$0"
  echo "$CFLAGS"
  "$CLANG" --version | head -n 1
} | sha256sum | cut -d' ' -f1)
if [ "$force" = 0 ] && [ -f "$so" ] && [ -f "$stamp" ]; then
  so_hash=$(sha256sum "$so" | cut -d' ' -f1)
  if [ "$(cat "$stamp")" = "$inputs_hash $so_hash" ]; then
    say "up to date ($so)"
    exit 0
  fi
fi

# 3. Compile, merge, link.
tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
objs=""
for f in $sources; do
  case "$f" in *.c) ;; *) continue ;; esac
  o="$tmp/$(basename "$f" .c).o"
  # shellcheck disable=SC2086
  "$CLANG" $CFLAGS -I "$src" -c "$f" -o "$o"
  objs="$objs $o"
done
if [ "$quiet" = 1 ]; then
  # shellcheck disable=SC2086
  sh scripts/node22 programs/linker/link.ts "$tmp/out.so" $objs >/dev/null
else
  # shellcheck disable=SC2086
  sh scripts/node22 programs/linker/link.ts "$tmp/out.so" $objs | sed 's/^/build-program: /'
fi
mv "$tmp/out.so" "$so"
echo "$inputs_hash $(sha256sum "$so" | cut -d' ' -f1)" > "$stamp"
say "built $so"
