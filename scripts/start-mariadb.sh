#!/usr/bin/env bash
# Starts a throw-away MariaDB server (Debian's mariadbd, not Debian's service) with all of its state
# under DIR, listening on 127.0.0.1:PORT only, and prints
#   READY mysql+pymysql://gaze:gaze@127.0.0.1:PORT/gaze
#   usage: scripts/start-mariadb.sh DIR [PORT]      (PORT defaults to 3306)
# Layout: DIR/data (the datadir), DIR/run (its unix socket and pid file), DIR/tmp, DIR/mariadb.log (error log).
# Tuned for tests, not for keeping data: no binary log, no doublewrite, the redo log flushed lazily.
# The user `gaze` (password gaze) may create databases, so tests can make one each; it owns `gaze`.
# Idempotent: when DIR's server already runs it only prints READY; a stopped DIR is started again with
# its data. As root the server runs as the `mysql` system user, who then owns DIR.
# Stop it with scripts/stop-mariadb.sh DIR [--remove].
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
port=${2:-3306}
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  echo "start-mariadb: bad port '$port'" >&2
  exit 2
fi

log() { echo "start-mariadb: $*" >&2; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
if [ ! -x "$mariadbd" ] || ! command -v mariadb-install-db >/dev/null || ! command -v mariadb >/dev/null; then
  log "MariaDB server binaries not found (install them with scripts/install-system-deps.sh)"
  exit 1
fi

mkdir -p "$1"
dir=$(cd "$1" && pwd)
data="$dir/data"
run="$dir/run"
tmp="$dir/tmp"
logfile="$dir/mariadb.log"
sock="$run/mysqld.sock"
pidfile="$run/mariadbd.pid"

owner=()
user_opt=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id mysql >/dev/null 2>&1; then
    log "running as root, but there is no 'mysql' system user to run the server as"
    exit 1
  fi
  owner=(runuser -u mysql --)
  user_opt=(--user=mysql)
  chown mysql: "$dir"
  chmod 700 "$dir"
fi
cd "$dir"
ready_line="READY mysql+pymysql://gaze:gaze@127.0.0.1:${port}/gaze"
client() { mariadb --no-defaults --protocol=socket -S "$sock" -u root "$@"; }

if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  if client -e 'select 1' >/dev/null 2>&1; then
    echo "$ready_line"
    exit 0
  fi
  log "a MariaDB for $dir is running but does not answer; stop it first (scripts/stop-mariadb.sh $dir)"
  exit 1
fi

# Its own temp dir: servers started side by side (one per test file) would collide in /tmp.
mkdir -p "$tmp"
[ ${#owner[@]} -eq 0 ] || chown mysql: "$tmp"

if [ ! -d "$data/mysql" ]; then
  started=$(date +%s%N)
  # Install into a scratch directory and rename it at the end: a half-made datadir is never taken for one.
  rm -rf "$data.new"
  out=$(mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$data.new" --auth-root-authentication-method=socket \
    --skip-test-db --tmpdir="$tmp" 2>&1) || { log "mariadb-install-db failed:"; echo "$out" >&2; exit 1; }
  mv "$data.new" "$data"
  log "mariadb-install-db took $(ms_since "$started") ms"
fi

mkdir -p "$run"
chmod 700 "$run"
[ ${#owner[@]} -eq 0 ] || chown mysql: "$run"
touch "$logfile"
[ ${#owner[@]} -eq 0 ] || chown mysql: "$logfile"

# setsid with stdin from /dev/null and output in the log: the server holds none of the caller's pipes.
started=$(date +%s%N)
setsid "$mariadbd" --no-defaults "${user_opt[@]}" --datadir="$data" --tmpdir="$tmp" --socket="$sock" --pid-file="$pidfile" \
  --port="$port" --bind-address=127.0.0.1 --skip-name-resolve --log-error="$logfile" \
  --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-buffer-pool-size=64M \
  --max-connections=300 --character-set-server=utf8mb4 --collation-server=utf8mb4_nopad_bin \
  </dev/null >>"$logfile" 2>&1 &
server=$!

for _ in $(seq 1 600); do
  if client -e 'select 1' >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    log "MariaDB exited while starting on 127.0.0.1:$port; tail of $logfile:"
    tail -n 20 "$logfile" >&2
    exit 1
  fi
  sleep 0.1
done
if ! client -e 'select 1' >/dev/null 2>&1; then
  log "MariaDB did not answer within 60 s; tail of $logfile:"
  tail -n 20 "$logfile" >&2
  kill -9 "$server" 2>/dev/null || true
  exit 1
fi
log "MariaDB accepted connections after $(ms_since "$started") ms"

out=$(client 2>&1 <<'EOF'
CREATE USER IF NOT EXISTS 'gaze'@'127.0.0.1' IDENTIFIED BY 'gaze';
GRANT ALL PRIVILEGES ON *.* TO 'gaze'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS gaze CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
EOF
) || {
  log "creating user/database gaze failed:"; echo "$out" >&2
  kill "$server" 2>/dev/null || true
  exit 1
}
echo "$ready_line"
