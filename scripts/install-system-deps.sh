#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: PostgreSQL, Keystone (served by uwsgi),
# Swift (proxy with s3api, account/container/object servers, memcached for tempauth tokens),
# qemu-img and the tools the image tests and plugins use (genisoimage, sfdisk, zip/unzip, bzip2, xz), the
# OpenStack command-line clients, and the reference Glance (glance-api: its shipped config files and
# metadefs are test inputs, and the bench measures Gaze against it). Idempotent; quiet when everything
# is present.
set -euo pipefail

packages=(
  postgresql
  keystone uwsgi-core uwsgi-plugin-python3 python3-keystoneclient
  python3-openstackclient python3-glanceclient
  swift-proxy swift-account swift-container swift-object python3-swiftclient memcached
  qemu-utils
  genisoimage fdisk zip unzip bzip2 xz-utils
  glance-api
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

# Debian would start its own keystone/postgresql/swift/memcached services on install; we start our own on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
fi
echo "installing: ${missing[*]}" >&2
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
