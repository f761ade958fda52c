#!/usr/bin/env bash
# Starts a real Glance (Debian's glance-api, the reference implementation) on 127.0.0.1:PORT with all of
# its state under DIR: a file store, a staging area and a database. For side-by-side comparisons and
# benchmarks; nothing of Gaze's is used.
#   usage: scripts/start-glance.sh DIR [PORT]          (PORT defaults to 9494)
#   env:   GLANCE_WORKERS     API worker processes (2)
#          GLANCE_DATABASE    SQLAlchemy URL (sqlite in DIR; SQLite under Glance answers "database is
#                             locked" with two concurrent clients, so benchmarks pass a PostgreSQL URL)
#          GLANCE_KEYSTONE    a Keystone v3 URL (http://127.0.0.1:5000): token auth, validated with the
#                             service user GLANCE_SERVICE_USER / GLANCE_SERVICE_PASSWORD (gaze /
#                             gaze-secret, which scripts/keystone_seed.py makes); unset: no auth
#          GLANCE_ALLOWED_HOSTS / GLANCE_ALLOWED_PORTS   [import_filtering_opts] for web-download
#          GLANCE_NOTIFICATIONS  an oslo.messaging notification driver (`log` writes them to its log)
#          GLANCE_BACKENDS    several file stores by name (`fast,cheap`: multi-store, the first the default)
#          GLANCE_TRUSTED_HEADERS=1  without Keystone, take the caller from headers as keystonemiddleware
#                             would leave them (X-Identity-Status: Confirmed, X-Project-Id, X-User-Id,
#                             X-Roles), so that a side-by-side probe can act as a member, a reader or an
#                             admin; unset, Glance's no-auth mode gives every request no roles
# Prints READY when it answers. Stop it with scripts/stop-glance.sh DIR. Logs: DIR/glance-api.log.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
port=${2:-9494}
url="http://127.0.0.1:${port}"
conf="$dir/glance-api.conf"
pidfile="$dir/glance-api.pid"
log() { echo "start-glance: $*" >&2; }

if ! command -v glance-api >/dev/null || ! command -v glance-manage >/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
  fi
  log "installing glance-api"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends glance-api >/dev/null
fi

# Glance reaches PostgreSQL through psycopg2, which glance-api does not pull in.
if [[ "${GLANCE_DATABASE:-}" == postgresql* ]] && ! python3 -c 'import psycopg2' 2>/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  log "installing python3-psycopg2"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-psycopg2 >/dev/null
fi

healthy() { curl -fsS -m 5 -o /dev/null "$url/versions" 2>/dev/null; }
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  if healthy; then echo READY; exit 0; fi
  log "a Glance for $dir is running (pid $(cat "$pidfile")) but does not answer on $url; stop it first"
  exit 1
fi
if healthy; then
  log "something else already answers on $url"
  exit 1
fi

mkdir -p "$dir/images" "$dir/staging" "$dir/tasks"
stores="[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $dir/images"
backends=
if [ -n "${GLANCE_BACKENDS:-}" ]; then
  IFS=, read -r -a names <<<"$GLANCE_BACKENDS"
  stores="[glance_store]
default_backend = ${names[0]}"
  for name in "${names[@]}"; do
    mkdir -p "$dir/images-$name"
    backends="${backends:+$backends, }$name:file"
    stores="$stores

[$name]
filesystem_store_datadir = $dir/images-$name"
  done
fi
flavor=
auth=
paste=/etc/glance/glance-api-paste.ini
if [ -n "${GLANCE_TRUSTED_HEADERS:-}" ] && [ -z "${GLANCE_KEYSTONE:-}" ]; then
  # Glance's keystone pipeline without authtoken: its context middleware reads the identity headers.
  flavor=trusted
  paste="$dir/glance-api-paste.ini"
  cp /etc/glance/glance-api-paste.ini "$paste"
  printf '\n[pipeline:glance-api-trusted]\npipeline = cors healthcheck http_proxy_to_wsgi versionnegotiation osprofiler context rootapp\n' >>"$paste"
fi
if [ -n "${GLANCE_KEYSTONE:-}" ]; then
  flavor=keystone
  auth="[keystone_authtoken]
www_authenticate_uri = ${GLANCE_KEYSTONE}
auth_url = ${GLANCE_KEYSTONE}
auth_type = password
username = ${GLANCE_SERVICE_USER:-gaze}
password = ${GLANCE_SERVICE_PASSWORD:-gaze-secret}
project_name = service
user_domain_id = default
project_domain_id = default
region_name = RegionOne
memcached_servers =
token_cache_time = 300"
fi
cat >"$conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = ${port}
workers = ${GLANCE_WORKERS:-2}
log_file = $dir/glance-api.log
use_stderr = false
enabled_import_methods = [glance-direct,web-download,copy-image]
node_staging_uri = file://$dir/staging
${backends:+enabled_backends = $backends}
image_cache_dir = $dir/cache

[database]
connection = ${GLANCE_DATABASE:-sqlite:///$dir/glance.db}

${stores}

[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks

[os_glance_staging_store]
filesystem_store_datadir = $dir/staging

[import_filtering_opts]
allowed_hosts = [${GLANCE_ALLOWED_HOSTS:-}]
allowed_ports = [${GLANCE_ALLOWED_PORTS:-}]

[oslo_messaging_notifications]
driver = ${GLANCE_NOTIFICATIONS:-noop}

[paste_deploy]
flavor = ${flavor}
config_file = ${paste}

${auth}
EOF

glance-manage --config-file "$conf" db_sync >>"$dir/glance-manage.log" 2>&1 || { log "db_sync failed:"; tail -n 20 "$dir/glance-manage.log" >&2; exit 1; }
glance-api --config-file "$conf" >>"$dir/glance-api.out" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 120); do
  if healthy; then echo READY; exit 0; fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "glance-api exited; tail of its log:"; tail -n 30 "$dir/glance-api.log" "$dir/glance-api.out" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
log "glance-api did not answer within 60 s"
kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
exit 1
