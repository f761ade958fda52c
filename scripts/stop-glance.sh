#!/usr/bin/env bash
# Stops the Glance scripts/start-glance.sh started for DIR (by the PID it recorded); --remove deletes DIR.
#   usage: scripts/stop-glance.sh DIR [--remove]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [--remove]" >&2; exit 2; }
dir=$1
pidfile="$dir/glance-api.pid"
if [ -s "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && grep -qa glance-api "/proc/$pid/cmdline" 2>/dev/null; then
    # The parent takes its workers down with it on TERM.
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
fi
[ "${2:-}" = "--remove" ] && rm -rf "$dir"
exit 0
