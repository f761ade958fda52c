#!/usr/bin/env bash
# Stops the Keystone that scripts/start-keystone.sh started for DIR, by the PID in DIR/uwsgi.pid only.
#   usage: scripts/stop-keystone.sh DIR [--remove]     (--remove deletes DIR afterwards)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != --remove ]; }; then
  echo "usage: $0 DIR [--remove]" >&2
  exit 2
fi
dir=$1
pidfile="$dir/uwsgi.pid"

if [ -s "$pidfile" ]; then
  pid=$(tr -dc '0-9' <"$pidfile")
  # Only signal it if it still is our uwsgi (a stale pid file could name a recycled PID).
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qai uwsgi "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true   # started with --die-on-term: master stops its workers
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop-keystone: pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
fi

if [ "${2:-}" = --remove ]; then
  rm -rf "$dir"
fi
