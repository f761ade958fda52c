#!/usr/bin/env bash
# Starts a throw-away RabbitMQ (Debian's rabbitmq-server, not Debian's service) with all of its state
# under DIR: AMQP on 127.0.0.1:PORT, its Erlang port mapper and distribution on loopback ports of their
# own (PORT+1, PORT+2), user guest/guest allowed from loopback. Prints
#   READY rabbit://guest:guest@127.0.0.1:PORT/   (oslo.messaging's transport_url form)
#   usage: scripts/start-rabbitmq.sh DIR [PORT [TLS_DIR]]   (PORT defaults to 5672)
# With TLS_DIR (holding ca.pem, cert.pem and key.pem), AMQP over TLS listens on 127.0.0.1:PORT+3 as well,
# with cert.pem, and asks clients for a certificate signed by ca.pem (refusing those without); it
# then also prints
#   READY_TLS 127.0.0.1:PORT+3
# Stop it with scripts/stop-rabbitmq.sh DIR. Logs: DIR/log, DIR/server.out (and DIR/erl_crash.dump when Erlang dies).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "usage: $0 DIR [PORT [TLS_DIR]]" >&2
  exit 2
fi
port=${2:-5672}
bash "$(dirname "$0")/apt-install.sh" rabbitmq-server
mkdir -p "$1"
dir=$(cd "$1" && pwd)
bin=/usr/lib/rabbitmq/bin # the programs themselves: /usr/sbin's wrappers switch to the rabbitmq user

cat >"$dir/env.sh" <<ENV
export HOME='$dir'
export RABBITMQ_NODENAME='gaze$port@localhost'
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$port
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=$((port + 1))
export RABBITMQ_DIST_PORT=$((port + 2))
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
export RABBITMQ_MNESIA_BASE='$dir/mnesia'
export RABBITMQ_LOG_BASE='$dir/log'
export RABBITMQ_PID_FILE='$dir/rabbit.pid'
export RABBITMQ_ENABLED_PLUGINS_FILE='$dir/enabled_plugins'
export RABBITMQ_CONFIG_FILE='$dir/rabbitmq'
export RABBITMQ_ADVANCED_CONFIG_FILE='$dir/advanced.config'
export ERL_CRASH_DUMP='$dir/erl_crash.dump'
ENV
echo '[].' >"$dir/enabled_plugins"
echo 'loopback_users = none' >"$dir/rabbitmq.conf"
tls_port=
if [ -n "${3:-}" ]; then
  tls=$(cd "$3" && pwd)
  tls_port=$((port + 3))
  cat >>"$dir/rabbitmq.conf" <<CONF
listeners.ssl.default = 127.0.0.1:$tls_port
ssl_options.cacertfile = $tls/ca.pem
ssl_options.certfile = $tls/cert.pem
ssl_options.keyfile = $tls/key.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
CONF
fi
# shellcheck source=/dev/null
. "$dir/env.sh"

"$bin/rabbitmq-server" >>"$dir/server.out" 2>&1 &
echo $! >"$dir/server.pid"
for _ in $(seq 1 120); do
  if "$bin/rabbitmqctl" -q await_startup >/dev/null 2>&1; then
    echo "READY rabbit://guest:guest@127.0.0.1:$port/"
    if [ -n "$tls_port" ]; then echo "READY_TLS 127.0.0.1:$tls_port"; fi
    exit 0
  fi
  if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
    echo "start-rabbitmq: rabbitmq-server exited; tail of its output:" >&2
    tail -n 20 "$dir/server.out" >&2
    exit 1
  fi
  sleep 0.5
done
echo "start-rabbitmq: RabbitMQ did not start within 60 s" >&2
exit 1
