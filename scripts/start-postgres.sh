#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster (Debian's binaries, not Debian's service) with all of its
# state under DIR, listening on 127.0.0.1:PORT only, and prints
#   READY postgresql://gaze:gaze@127.0.0.1:PORT/gaze
#   usage: scripts/start-postgres.sh DIR [PORT]      (PORT defaults to 5432)
#   env:   PG_BINDIR   directory of initdb/pg_ctl/psql (default: the newest /usr/lib/postgresql/*/bin)
# Layout: DIR/data (the cluster), DIR/run (its unix socket), DIR/postgres.log (server log).
# Tuned for tests, not for keeping data: fsync, synchronous_commit and full_page_writes are off.
# Authentication is `trust` on the unix socket (its directory is private to the cluster's owner) and
# on 127.0.0.1; the role `gaze` (password gaze, CREATEDB) owns the database `gaze`.
# Idempotent: when DIR's cluster already runs on PORT it only prints READY; a stopped DIR is started
# again with its data. PostgreSQL refuses to run as root: as root, every server program runs as the
# `postgres` system user, who then owns DIR. Stop it with scripts/stop-postgres.sh DIR [--remove].
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
port=${2:-5432}
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  echo "start-postgres: bad port '$port'" >&2
  exit 2
fi

log() { echo "start-postgres: $*" >&2; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  initdb_path=$(command -v initdb || true)
  [ -n "$initdb_path" ] && bindir=$(dirname "$(readlink -f "$initdb_path")")
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
  log "PostgreSQL server binaries not found (install them with scripts/install-system-deps.sh, or set PG_BINDIR)"
  exit 1
fi

mkdir -p "$1"
dir=$(cd "$1" && pwd)
data="$dir/data"
sock="$dir/run"
logfile="$dir/postgres.log"

# As root, run the server programs as the unprivileged `postgres` user (they refuse to run as root).
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    log "running as root, but there is no 'postgres' system user to run the server as"
    exit 1
  fi
  as_owner=(runuser -u postgres --)
  chown postgres: "$dir"
  chmod 700 "$dir"
  if ! runuser -u postgres -- test -w "$dir"; then
    log "user postgres cannot reach $dir: every parent directory must be searchable by it (use one under /tmp)"
    exit 1
  fi
fi
# The server programs start in DIR (the caller's cwd may not be readable for the postgres user).
cd "$dir"
pg() { "${as_owner[@]}" "$bindir/$1" "${@:2}"; }

ready_line="READY postgresql://gaze:gaze@127.0.0.1:${port}/gaze"

# The port of the cluster running for DIR (line 4 of postmaster.pid), or failure when none runs.
running_port() {
  [ -s "$data/postmaster.pid" ] || return 1
  pg pg_ctl status -D "$data" >/dev/null 2>&1 || return 1
  sed -n 4p "$data/postmaster.pid"
}

if current=$(running_port); then
  if [ "$current" = "$port" ] && pg pg_isready -q -h 127.0.0.1 -p "$port" -t 5; then
    echo "$ready_line"
    exit 0
  fi
  log "a PostgreSQL for $dir is already running on port ${current:-?}; stop it first (scripts/stop-postgres.sh $dir)"
  exit 1
fi

if [ ! -f "$data/PG_VERSION" ]; then
  started=$(date +%s%N)
  # initdb into a scratch directory and rename it at the end: a half-made cluster is never taken for one.
  rm -rf "$data.new"
  out=$(pg initdb -D "$data.new" -U postgres -E UTF8 --locale=C --auth-local=trust --auth-host=trust \
    --no-sync --no-instructions 2>&1) || { log "initdb failed:"; echo "$out" >&2; exit 1; }
  cat >"$data.new/pg_hba.conf" <<'EOF'
# Written by scripts/start-postgres.sh: the socket directory is private to the cluster's owner; TCP
# only from 127.0.0.1 (the server listens nowhere else).
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
  cat >>"$data.new/postgresql.conf" <<'EOF'

# --- scripts/start-postgres.sh: a disposable test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_permissions = 0700
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
max_connections = 200
huge_pages = off
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
# Port and socket directory of the current start (rewritten by every start).
include_if_exists = 'gaze-start.conf'
EOF
  [ ${#as_owner[@]} -eq 0 ] || chown postgres: "$data.new/pg_hba.conf" "$data.new/postgresql.conf"
  mv "$data.new" "$data"
  log "initdb took $(ms_since "$started") ms"
fi

mkdir -p "$sock"
chmod 700 "$sock"
[ ${#as_owner[@]} -eq 0 ] || chown postgres: "$sock"
# Single quotes are doubled inside a postgresql.conf string.
sock_conf=${sock//\'/\'\'}
cat >"$data/gaze-start.conf" <<EOF
port = $port
unix_socket_directories = '$sock_conf'
EOF
[ ${#as_owner[@]} -eq 0 ] || chown postgres: "$data/gaze-start.conf"
touch "$logfile"
[ ${#as_owner[@]} -eq 0 ] || chown postgres: "$logfile"

# pg_ctl puts the postmaster in its own session with stdin from /dev/null and output in the log, so
# it holds none of the caller's pipes; -w waits until it accepts connections.
started=$(date +%s%N)
if ! pg pg_ctl start -D "$data" -l "$logfile" -w -t 60 -s >/dev/null 2>&1; then
  log "PostgreSQL did not start on 127.0.0.1:$port; tail of $logfile:"
  tail -n 20 "$logfile" >&2
  # pg_ctl may have given up on a postmaster that still starts: stop the one this run started.
  pg pg_ctl stop -D "$data" -m immediate -s >/dev/null 2>&1 || true
  exit 1
fi
if ! pg pg_isready -q -h 127.0.0.1 -p "$port" -t 30; then
  log "PostgreSQL started but does not answer on 127.0.0.1:$port; tail of $logfile:"
  tail -n 20 "$logfile" >&2
  pg pg_ctl stop -D "$data" -m immediate -s >/dev/null 2>&1 || true
  exit 1
fi
log "PostgreSQL accepted connections after $(ms_since "$started") ms"

# The role and database the service uses; CREATEDB lets tests make a database each.
out=$(pg psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres 2>&1 <<'EOF'
SELECT 'CREATE ROLE gaze LOGIN CREATEDB PASSWORD ''gaze''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gaze') \gexec
SELECT 'CREATE DATABASE gaze OWNER gaze' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'gaze') \gexec
EOF
) || {
  log "creating role/database gaze failed:"; echo "$out" >&2
  pg pg_ctl stop -D "$data" -m fast -s >/dev/null 2>&1 || true
  exit 1
}
echo "$ready_line"
