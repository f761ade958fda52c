#!/usr/bin/env bash
# Installs what test/e2e/horizon.test.ts drives for real: Debian's Horizon (openstack-dashboard, served by
# Django's runserver, no Apache), Chromium with its chromedriver, and Selenium for the system python.
# Idempotent; quiet when everything is present; exits non-zero when it cannot install.
set -euo pipefail

packages=(openstack-dashboard chromium chromium-driver python3-selenium)

exec bash "$(dirname "$0")/apt-install.sh" "${packages[@]}"
