#!/usr/bin/env bash
# Stops the Swift that scripts/start-swift.sh started for DIR (proxy, object, container and account
# servers, memcached), by the PIDs it recorded in DIR/run only.
#   usage: scripts/stop-swift.sh DIR [--remove]     (--remove deletes DIR afterwards)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != --remove ]; }; then
  echo "usage: $0 DIR [--remove]" >&2
  exit 2
fi
dir=$1
run="$dir/run"

# Running and not a zombie: the servers outlive start-swift.sh, so init reaps them, which can take seconds.
alive() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# The proxy first, so nothing new reaches the backends while they stop.
signalled=()
for name in proxy-server object-server container-server account-server memcached; do
  pidfile="$run/$name.pid"
  [ -s "$pidfile" ] || continue
  pid=$(tr -dc '0-9' <"$pidfile")
  # Only signal it if it still is ours: its command line must contain what start-swift.sh recorded
  # (the config path in DIR, or memcached's port), since a stale pid file could name a recycled PID.
  match=$(cat "$run/$name.match" 2>/dev/null || true)
  if [ -n "$pid" ] && [ -n "$match" ] && kill -0 "$pid" 2>/dev/null \
      && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$match"; then
    kill -TERM "$pid" 2>/dev/null || true
    signalled+=("$pid")
  fi
  rm -f "$pidfile"
done

for pid in "${signalled[@]}"; do
  for _ in $(seq 1 100); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    echo "stop-swift: pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
done

if [ "${2:-}" = --remove ]; then
  rm -rf "$dir"
fi
