#!/bin/sh
# Installs Debian's Docker engine (docker.io) and runs the project's own dockerd: its own socket,
# data root and exec root, no bridge, no iptables, no IP forwarding (containers run with network
# mode `none`). Idempotent: when the engine already answers on the socket this is a no-op.
#   sh scripts/setup-docker.sh [--quiet]
# Environment (optional): BITFLOW_DOCKER_DIR (socket/pid/exec dir, default /run/bitflow-docker),
# BITFLOW_DOCKER_DATA (data root, default /var/lib/bitflow-docker),
# BITFLOW_DOCKER_LOG (daemon log, default /var/log/bitflow-dockerd.log).
set -eu
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "setup-docker: $*"; }
die() { echo "setup-docker: $*" >&2; exit 1; }

run_dir=${BITFLOW_DOCKER_DIR:-/run/bitflow-docker}
data_root=${BITFLOW_DOCKER_DATA:-/var/lib/bitflow-docker}
log_file=${BITFLOW_DOCKER_LOG:-/var/log/bitflow-dockerd.log}
sock="$run_dir/docker.sock"
pid_file="$run_dir/dockerd.pid"
ready_timeout=60

# The engine answers on our socket. Prefer Debian's client (matches the engine's API version);
# any docker client negotiates the API version down.
client() {
  if [ -x /usr/bin/docker ]; then /usr/bin/docker -H "unix://$sock" "$@"; else docker -H "unix://$sock" "$@"; fi
}
engine_up() {
  [ -S "$sock" ] && client version --format '{{.Server.Version}}' >/dev/null 2>&1
}

if engine_up; then
  say "dockerd already running on $sock"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "the Docker engine needs root to install and start; re-run as root (sudo sh scripts/setup-docker.sh)"

# 1. Install docker.io (engine, containerd, runc) from the host's apt sources.
if ! command -v dockerd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  # refresh the package lists only when they do not know docker.io yet
  if ! apt-cache show docker.io >/dev/null 2>&1; then
    say "apt-get update"
    apt_get update -q >/dev/null
  fi
  # The package's maintainer scripts would start a stock dockerd (bridge + iptables) through
  # invoke-rc.d; forbid service starts for the duration of the install unless a policy exists.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, written by bitflow setup-docker.sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  say "installing docker.io"
  status=0
  apt_get install -y -q --no-install-recommends docker.io >/dev/null || status=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  [ "$status" = 0 ] || die "apt-get install docker.io failed (exit $status)"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found after installing docker.io"

# 2. Start our dockerd, unless one we started is still alive (then just wait for it below).
mkdir -p "$run_dir" "$data_root" "$(dirname "$log_file")"
chmod 700 "$run_dir"
running=0
if [ -f "$pid_file" ]; then
  pid=$(cat "$pid_file" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/comm" 2>/dev/null; then
    running=1
  else
    rm -f "$pid_file" "$sock"
  fi
fi
if [ "$running" = 0 ]; then
  say "starting dockerd on $sock (data root $data_root, log $log_file)"
  # setsid: the engine outlives this shell and is not in its process group
  setsid dockerd \
    --host "unix://$sock" \
    --data-root "$data_root" \
    --exec-root "$run_dir/exec" \
    --pidfile "$pid_file" \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false --ip-forward=false \
    --userland-proxy=false \
    --log-driver=json-file --log-opt max-size=1m --log-opt max-file=1 \
    </dev/null >>"$log_file" 2>&1 &
fi

# 3. Wait (bounded) until the engine answers on the socket.
waited=0
while ! engine_up; do
  if [ "$waited" -ge $((ready_timeout * 5)) ]; then
    tail -n 20 "$log_file" >&2 2>/dev/null || true
    die "dockerd did not answer on $sock within ${ready_timeout}s; see $log_file"
  fi
  sleep 0.2
  waited=$((waited + 1))
done
say "dockerd $(client version --format '{{.Server.Version}}') ready on $sock"
