#!/usr/bin/env bash
# The whole test suite from a fresh checkout: the Debian packages the tests drive for real, the npm
# dependencies as locked, then type checking and every test (Keystone, PostgreSQL and the OpenStack CLI
# are started on loopback by the tests themselves and stopped afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/install-horizon-deps.sh
npm ci --no-audit --no-fund
npm test
