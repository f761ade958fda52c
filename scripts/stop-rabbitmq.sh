#!/usr/bin/env bash
# Stops the RabbitMQ that scripts/start-rabbitmq.sh DIR started, and its Erlang port mapper.
#   usage: scripts/stop-rabbitmq.sh DIR [--remove]
set -uo pipefail
dir=$1
[ -f "$dir/env.sh" ] || exit 0
# shellcheck source=/dev/null
. "$dir/env.sh"
/usr/lib/rabbitmq/bin/rabbitmqctl -q stop >/dev/null 2>&1 || { [ -s "$dir/server.pid" ] && kill -TERM "$(cat "$dir/server.pid")" 2>/dev/null; }
epmd -kill >/dev/null 2>&1 || true
[ "${2:-}" = "--remove" ] && rm -rf "$dir"
exit 0
