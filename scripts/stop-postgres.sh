#!/usr/bin/env bash
# Stops the PostgreSQL that scripts/start-postgres.sh started for DIR (pg_ctl stop -m fast on DIR/data,
# which signals only the postmaster named in DIR/data/postmaster.pid).
#   usage: scripts/stop-postgres.sh DIR [--remove]     (--remove deletes DIR afterwards)
#   env:   PG_BINDIR   as for start-postgres.sh
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != --remove ]; }; then
  echo "usage: $0 DIR [--remove]" >&2
  exit 2
fi
log() { echo "stop-postgres: $*" >&2; }

if [ ! -d "$1" ]; then
  exit 0
fi
dir=$(cd "$1" && pwd)
data="$dir/data"

if [ -s "$data/postmaster.pid" ]; then
  bindir=${PG_BINDIR:-}
  if [ -z "$bindir" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
    pg_ctl_path=$(command -v pg_ctl || true)
    [ -n "$pg_ctl_path" ] && bindir=$(dirname "$(readlink -f "$pg_ctl_path")")
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
    log "pg_ctl not found (set PG_BINDIR)"
    exit 1
  fi
  as_owner=()
  if [ "$(id -u)" -eq 0 ]; then
    # pg_ctl refuses to run as root; the cluster belongs to whoever owns its data directory.
    as_owner=(runuser -u "$(stat -c %U "$data")" --)
  fi
  cd "$dir"
  pg_ctl() { "${as_owner[@]}" "$bindir/pg_ctl" "$@"; }
  if pg_ctl status -D "$data" >/dev/null 2>&1; then
    if ! pg_ctl stop -D "$data" -m fast -w -t 30 -s; then
      log "fast shutdown did not finish within 30 s; shutting down immediately"
      pg_ctl stop -D "$data" -m immediate -w -t 30 -s || true
    fi
  fi
fi

if [ "${2:-}" = --remove ]; then
  rm -rf "$dir"
fi
