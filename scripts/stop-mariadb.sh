#!/usr/bin/env bash
# Stops the MariaDB that scripts/start-mariadb.sh started for DIR: SIGTERM to the PID in DIR/run/mariadbd.pid
# (a clean shutdown), SIGKILL after 30 s.
#   usage: scripts/stop-mariadb.sh DIR [--remove]     (--remove deletes DIR afterwards)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != --remove ]; }; then
  echo "usage: $0 DIR [--remove]" >&2
  exit 2
fi
[ -d "$1" ] || exit 0
dir=$(cd "$1" && pwd)
pidfile="$dir/run/mariadbd.pid"

if [ -s "$pidfile" ]; then
  pid=$(cat "$pidfile")
  # Only a mariadbd whose datadir is this DIR's is signalled (the pid file may be stale).
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- "--datadir=$dir/data"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop-mariadb: no clean shutdown within 30 s; killing $pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
fi

if [ "${2:-}" = --remove ]; then
  rm -rf "$dir"
fi
