#!/usr/bin/env bash
# Starts a private OpenStack Swift (Debian's swift 2.30 packages; scripts/install-system-deps.sh installs
# them) with all of its config, rings, data, logs and PIDs under DIR: memcached, the account, container
# and object servers on free loopback ports, and the proxy (Swift API + S3 API) on 127.0.0.1:PORT.
# Waits until it is healthy, then prints `READY http://127.0.0.1:PORT`.
#   usage: scripts/start-swift.sh DIR [PORT]      (PORT defaults to 8080)
#
# Users (tempauth):  test:tester / testing (.admin)     test2:tester2 / testing2 (.admin)
#                    admin:admin / admin (.reseller_admin)     test:tester3 / testing3 (no role)
#   Swift API:  GET http://127.0.0.1:PORT/auth/v1.0 with X-Storage-User: test:tester, X-Storage-Pass: testing
#   S3 API:     endpoint http://127.0.0.1:PORT, access key test:tester, secret key testing, region us-east-1,
#               path-style addressing.
#
# swift.conf: Swift reads it (hash prefix/suffix, storage policies, constraints) from the fixed path
# /etc/swift/swift.conf, whatever `swift_dir` says, and the Debian package ships one there with
# `changeme` hashes. This script does NOT write or read anything under /etc/swift: it writes
# DIR/etc/swift.conf with fixed test hash prefix/suffix and starts each server through
# scripts/swift_rings.py, which calls swift.common.utils.set_swift_dir(DIR/etc) and reloads constraints
# and policies before run_wsgi, exactly as /usr/bin/swift-*-server would otherwise run.
#
# Idempotent: when everything started for DIR is running and healthy on PORT it only prints READY (it does
# not apply changed settings: run scripts/stop-swift.sh DIR first). A stopped DIR starts again with its
# objects. Stop it with scripts/stop-swift.sh DIR [--remove]. Logs: DIR/log/*.log.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
port=${2:-8080}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# python3-swift exists only for Debian's python; a pyenv/venv python3 may come first on PATH.
py=/usr/bin/python3
helper="$here/swift_rings.py"
url="http://127.0.0.1:${port}"
etc="$dir/etc"
run="$dir/run"
logs="$dir/log"
devices="$dir/srv"
servers=(account-server container-server object-server proxy-server)

log() { echo "start-swift: $*" >&2; }

for bin in memcached curl "$py"; do
  command -v "$bin" >/dev/null || { log "$bin is missing (run scripts/install-system-deps.sh)"; exit 1; }
done
"$py" -c 'import swift' 2>/dev/null || { log "python3-swift is missing (run scripts/install-system-deps.sh)"; exit 1; }

# The PID recorded for NAME if that process still runs and is ours (a stale file may name a recycled PID).
running_pid() {
  local name=$1 pid
  [ -s "$run/$name.pid" ] || return 1
  pid=$(tr -dc '0-9' <"$run/$name.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(cat "$run/$name.match" 2>/dev/null || echo "$dir")" || return 1
  echo "$pid"
}

# Free = nothing listens on it (SO_REUSEADDR, as the servers use: connections in TIME_WAIT do not count).
port_free() {
  "$py" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

ok() { curl -fsS -m 5 -o /dev/null "$@" 2>/dev/null; }

healthy() {
  local p
  . "$etc/ports.env" 2>/dev/null || return 1
  for p in "$account_port" "$container_port" "$object_port"; do
    ok "http://127.0.0.1:$p/healthcheck" || return 1
  done
  ok "$url/healthcheck" || return 1
  # tempauth keeps its tokens in memcached: a login proves the proxy and memcached work together.
  ok -H 'X-Storage-User: test:tester' -H 'X-Storage-Pass: testing' "$url/auth/v1.0"
}

any_running() {
  local name
  for name in memcached "${servers[@]}"; do
    running_pid "$name" >/dev/null && return 0
  done
  return 1
}

all_running() {
  local name
  for name in memcached "${servers[@]}"; do
    running_pid "$name" >/dev/null || return 1
  done
}

if any_running; then
  if all_running && [ "$(cat "$dir/port" 2>/dev/null)" = "$port" ] && healthy; then
    echo "READY $url"
    exit 0
  fi
  if [ "$(cat "$dir/port" 2>/dev/null)" != "$port" ] && all_running; then
    log "a Swift for $dir is already running on port $(cat "$dir/port" 2>/dev/null || echo '?'); stop it first"
    exit 1
  fi
  log "a Swift for $dir is partly running or unhealthy; restarting it"
  bash "$here/stop-swift.sh" "$dir"
fi
if ! port_free "$port"; then
  log "port $port on 127.0.0.1 is already in use"
  exit 1
fi

started=$(date +%s%N)
mkdir -p "$etc" "$run" "$logs" "$devices/sdb1" "$dir/cache"
"$py" "$helper" check-xattr "$devices/sdb1"

# Backend ports: the previous ones when still free (the rings need not change), else new free ones.
# memcached is private too (tempauth tokens), on a free port.
prev=()
if [ -f "$etc/ports.env" ]; then
  . "$etc/ports.env"
  prev=("$memcached_port" "$account_port" "$container_port" "$object_port")
fi
reuse=1
if [ ${#prev[@]} -eq 4 ]; then
  for p in "${prev[@]}"; do
    if [ "$p" = "$port" ] || ! port_free "$p"; then
      reuse=0
    fi
  done
else
  reuse=0
fi
if [ "$reuse" = 0 ]; then
  mapfile -t fresh < <("$py" "$helper" ports 4 "$port")
  memcached_port=${fresh[0]} account_port=${fresh[1]} container_port=${fresh[2]} object_port=${fresh[3]}
fi
cat >"$etc/ports.env" <<EOF
memcached_port=$memcached_port
account_port=$account_port
container_port=$container_port
object_port=$object_port
proxy_port=$port
EOF
echo "$port" >"$dir/port"

# Fixed test hashes: the same names always land in the same partitions, so a restarted DIR keeps its data.
cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = gaze-test-prefix
swift_hash_path_suffix = gaze-test-suffix

[storage-policy:0]
name = Policy-0
default = yes
EOF

user=$(id -un)
# workers = 0: each server is one process that does not fork (about 60 MiB RSS each).
backend_conf() {
  local name=$1 bind=$2 egg=$3
  cat >"$etc/$name.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $bind
workers = 0
user = $user
swift_dir = $etc
devices = $devices
mount_check = false
recon_cache_path = $dir/cache
log_name = $name

[pipeline:main]
pipeline = healthcheck $name

[app:$name]
use = egg:swift#$egg

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
}
backend_conf account-server "$account_port" account
backend_conf container-server "$container_port" container
backend_conf object-server "$object_port" object

# With SWIFT_KEYSTONE_URL (a Keystone's address, e.g. http://127.0.0.1:5000), Keystone tokens are taken
# too: authtoken checks them (as SWIFT_KEYSTONE_SERVICE_USER, default gaze / gaze-secret of project
# service, what start-keystone.sh seeds) and keystoneauth gives members and admins of a project its
# account KEY_<project id>. tempauth keeps its accounts (AUTH_*): the two prefixes keep them apart.
keystone_filters="" keystone_conf=""
if [ -n "${SWIFT_KEYSTONE_URL:-}" ]; then
  keystone_filters="authtoken keystoneauth"
  keystone_conf="
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $SWIFT_KEYSTONE_URL
auth_url = $SWIFT_KEYSTONE_URL
auth_type = password
username = ${SWIFT_KEYSTONE_SERVICE_USER:-gaze}
password = ${SWIFT_KEYSTONE_SERVICE_PASSWORD:-gaze-secret}
project_name = service
user_domain_id = default
project_domain_id = default
delay_auth_decision = True
memcached_servers = 127.0.0.1:$memcached_port

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = KEY_
operator_roles = admin, member
"
  "$py" -c 'import keystonemiddleware' 2>/dev/null || { log "python3-keystonemiddleware is missing (run scripts/install-system-deps.sh)"; exit 1; }
fi

# s3api sits right before tempauth (it turns S3 signatures into a tempauth check), and before slo (S3
# multipart uploads become static large objects). error_suppression_interval = 0: with one object node, a
# single 507 (e.g. metadata over the ext4 xattr space) would otherwise fail every request for 60 s.
cat >"$etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = $user
swift_dir = $etc
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth $keystone_filters copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
error_suppression_interval = 0

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false
allow_multipart_uploads = true
max_upload_part_num = 10000
min_segment_size = 5242880
dns_compliant_bucket_names = true
allowable_clock_skew = 900

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcached_port

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:copy]
use = egg:swift#copy

[filter:dlo]
use = egg:swift#dlo

[filter:symlink]
use = egg:swift#symlink
$keystone_conf
EOF

# One device, one replica, part power 10; rebuilt only when a backend port changed.
"$py" "$helper" rings "$etc" "account:$account_port" "container:$container_port" "object:$object_port"

pids=()
# After a failed start, stop what this run started (by its PIDs) rather than leave it behind.
give_up() {
  local name
  log "$1"
  for name in memcached "${servers[@]}"; do
    if [ -s "$logs/$name.log" ]; then
      log "tail of $logs/$name.log:"; tail -n 15 "$logs/$name.log" >&2
    fi
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  exit 1
}

# setsid: detached from the caller's terminal and process group; stop-swift.sh stops each by its PID.
# Each .match file holds a string the process's command line must contain for a PID to count as ours.
mc_user=()
[ "$(id -u)" -eq 0 ] && mc_user=(-u root)   # memcached refuses to run as root without -u
setsid memcached "${mc_user[@]}" -l 127.0.0.1 -p "$memcached_port" -U 0 -m 64 -c 256 \
  </dev/null >>"$logs/memcached.log" 2>&1 &
pids+=($!)
echo $! >"$run/memcached.pid"
echo "-p $memcached_port" >"$run/memcached.match"   # memcached's command line names its port
for name in "${servers[@]}"; do
  setsid "$py" "$helper" serve "$name" "$etc/$name.conf" </dev/null >>"$logs/$name.log" 2>&1 &
  pids+=($!)
  echo $! >"$run/$name.pid"
  echo "$etc/$name.conf" >"$run/$name.match"
done

for _ in $(seq 1 600); do
  healthy && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || give_up "process $pid exited during start"
  done
  sleep 0.1
done
healthy || give_up "Swift did not become healthy on $url within 60 s"
log "healthy after $(( ($(date +%s%N) - started) / 1000000 )) ms"
echo "READY $url"
