#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: PostgreSQL, MariaDB, Keystone (served by uwsgi),
# Swift (proxy with s3api, account/container/object servers, memcached for tempauth tokens, keystonemiddleware
# for Keystone tokens),
# qemu-img and the tools the image tests and plugins use (genisoimage, sfdisk, zip/unzip, bzip2, xz), the
# OpenStack command-line clients, and the reference Glance (glance-api: its shipped config files and
# metadefs are test inputs, and the bench measures Gaze against it), RabbitMQ and oslo.messaging (the
# notifications' broker and a real consumer), HAProxy (the multi-node test's load balancer), libfaketime (a process whose host clock is off), iproute2 (ss reads socket options back), openssl (the tests' certificates and CA). Idempotent; quiet when everything is present.
set -euo pipefail

packages=(
  postgresql mariadb-server mariadb-client
  keystone uwsgi-core uwsgi-plugin-python3 python3-keystoneclient
  python3-openstackclient python3-glanceclient
  swift-proxy swift-account swift-container swift-object python3-swiftclient memcached python3-keystonemiddleware
  qemu-utils
  genisoimage fdisk zip unzip bzip2 xz-utils
  glance-api
  rabbitmq-server python3-oslo.messaging
  haproxy
  faketime
  iproute2
  openssl
)

exec bash "$(dirname "$0")/apt-install.sh" "${packages[@]}"
