#!/usr/bin/env bash
# Starts a real Keystone (Debian's package, served by uwsgi) on 127.0.0.1:PORT with all of its state
# under DIR, seeds the users/projects/regions/endpoints the tests use, and prints READY.
#   usage: scripts/start-keystone.sh DIR [PORT]      (PORT defaults to 5000)
#   env:   GAZE_REGION_ONE_PORT / GAZE_REGION_TWO_PORT  ports of the image endpoints (9292 / 9293)
#          KEYSTONE_ADMIN_PASSWORD                      bootstrap admin password (admin-secret)
#          KEYSTONE_TOKEN_EXPIRATION                    seconds a token lives ([token] expiration, 3600)
# Idempotent-ish: when a Keystone started for DIR already answers on PORT it does nothing but print READY;
# a stopped DIR is started again with its database (the seeding finds what exists and fixes URLs).
# Stop it with scripts/stop-keystone.sh DIR. Logs: DIR/uwsgi.log, DIR/keystone.log, DIR/seed.log;
# DIR/admin-openrc holds OS_* variables for the openstack CLI.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
port=${2:-5000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
admin_password=${KEYSTONE_ADMIN_PASSWORD:-admin-secret}
url="http://127.0.0.1:${port}"
pidfile="$dir/uwsgi.pid"
conf="$dir/keystone.conf"
# Debian's keystone and keystoneclient live in the system python; a pyenv/venv python3 may come first.
py=/usr/bin/python3

log() { echo "start-keystone: $*" >&2; }

healthy() { curl -fsS -m 5 -o /dev/null "$url/v3" 2>/dev/null; }

running_pid() {
  local pid
  [ -s "$pidfile" ] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  # A stale pid file may name a recycled PID: only a live uwsgi counts.
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qai uwsgi "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

seed() {
  # One python process for everything: each `openstack` CLI call costs 3-4 s.
  OS_AUTH_URL="$url/v3" OS_ADMIN_PASSWORD="$admin_password" \
    GAZE_REGION_ONE_PORT="${GAZE_REGION_ONE_PORT:-9292}" GAZE_REGION_TWO_PORT="${GAZE_REGION_TWO_PORT:-9293}" \
    "$py" "$here/keystone_seed.py" >>"$dir/seed.log" 2>&1 || {
      log "seeding failed; tail of $dir/seed.log:"; tail -n 30 "$dir/seed.log" >&2; return 1; }
}

# After a failed start, stop the uwsgi this run started (by its PID) rather than leave it behind.
give_up() {
  log "$1; tail of $dir/uwsgi.log:"; tail -n 30 "$dir/uwsgi.log" >&2
  kill -TERM "$uwsgi_pid" 2>/dev/null || true
  exit 1
}

if pid=$(running_pid); then
  if [ "$(cat "$dir/port" 2>/dev/null)" = "$port" ] && healthy; then
    echo READY
    exit 0
  fi
  log "a Keystone for $dir is already running (pid $pid, port $(cat "$dir/port" 2>/dev/null || echo '?')); stop it first"
  exit 1
fi
if healthy; then
  log "something else already answers on $url"
  exit 1
fi

if [ ! -f "$dir/bootstrapped" ]; then
  mkdir -p -m 700 "$dir/fernet-keys" "$dir/credential-keys"
  cat >"$conf" <<EOF
[DEFAULT]
log_dir = $dir
log_file = keystone.log

[database]
connection = sqlite:///$dir/keystone.db

[fernet_tokens]
key_repository = $dir/fernet-keys

[fernet_receipts]
key_repository = $dir/fernet-keys

[credential]
key_repository = $dir/credential-keys

[token]
expiration = ${KEYSTONE_TOKEN_EXPIRATION:-3600}

# bcrypt only uses 72 bytes; the default (4096) makes Keystone log a warning on every password check.
[identity]
max_password_length = 72

# Without a cache every token validation took about 1 s; caches are per uwsgi worker, so role changes
# can look stale for expiration_time seconds.
[cache]
enabled = true
backend = dogpile.cache.memory
expiration_time = 10
EOF
  manage() { local out; out=$("$py" /usr/bin/keystone-manage --config-file "$conf" "$@" 2>&1) || {
    log "keystone-manage $1 failed:"; echo "$out" >&2; exit 1; }; }
  # Key repositories do not touch the database: make them while db_sync runs (each step costs ~2 s).
  manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" & fernet=$!
  manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" & credential=$!
  manage db_sync
  failed=0
  wait "$fernet" || failed=1
  wait "$credential" || failed=1
  [ "$failed" = 0 ] || exit 1
  # WAL lets the uwsgi workers read while another one writes (otherwise "database is locked").
  "$py" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL").fetchall()' \
    "$dir/keystone.db"
  manage bootstrap --bootstrap-password "$admin_password" \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-admin-url "$url/v3" --bootstrap-internal-url "$url/v3" --bootstrap-public-url "$url/v3" \
    --bootstrap-region-id RegionOne
  touch "$dir/bootstrapped"
fi
echo "$port" >"$dir/port"
rm -f "$pidfile"

# --threads 1: with threads SQLite connections get finalized on another thread and the lock leaks.
# Connection: close: otherwise python-requests clients reuse sockets uwsgi already closed.
# --lazy-apps: each worker opens its own database connections after fork.
# --die-on-term: SIGTERM stops uwsgi (by default it means "reload").
# setsid: detached from the caller's terminal/process group; stop-keystone.sh stops it by PID.
started=$(date +%s%N)
setsid uwsgi \
  --plugin python3 \
  --http-socket "127.0.0.1:$port" \
  --wsgi-file /usr/bin/keystone-wsgi-public \
  --env "OS_KEYSTONE_CONFIG_FILES=$conf" \
  --master --processes 3 --threads 1 --lazy-apps --need-app \
  --add-header "Connection: close" \
  --buffer-size 65535 \
  --die-on-term --no-orphans \
  --procname-prefix-spaced "gaze-keystone:$port" \
  --pidfile "$pidfile" --chdir "$dir" \
  </dev/null >>"$dir/uwsgi.log" 2>&1 &
uwsgi_pid=$!

for _ in $(seq 1 600); do
  if healthy; then break; fi
  kill -0 "$uwsgi_pid" 2>/dev/null || give_up "uwsgi exited"
  sleep 0.1
done
healthy || give_up "Keystone did not answer on $url/v3 within 60 s"
log "Keystone answered after $(( ($(date +%s%N) - started) / 1000000 )) ms"
seed || give_up "seeding failed"
cat >"$dir/admin-openrc" <<EOF
export OS_AUTH_URL=$url/v3 OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
export OS_USERNAME=admin OS_PASSWORD=$admin_password OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default
EOF
echo READY
