#!/usr/bin/env bash
# Install the Debian packages Tessera needs, only those that are missing (`make deps` calls this).
#
# Nothing is done, and nothing is asked of apt, when everything is already installed, so this also
# runs as an ordinary user on a prepared machine. Otherwise it needs root (or password-less sudo).
set -euo pipefail

PACKAGES=(
    postgresql-15              # the private database server (bin/services.sh)
    postgresql-15-postgis-3    # PostGIS extension for it
    redis-server               # dramatiq broker (also brings redis-cli)
    gdal-bin                   # GeoDjango's GDAL (libgdal32) ...
    libgeos-c1v5               # ... GEOS ...
    libproj25                  # ... and PROJ, loaded by django.contrib.gis via ctypes
    chromium                   # headless browser for the browser tests
    chromium-driver            # its WebDriver
    fonts-liberation           # so pages render with real fonts in headless Chromium
    procps                     # pgrep/ps, used by the worker crash tests
)
# The interpreter the venv is made from; Debian 12's python3 is 3.11.
if ! command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
    PACKAGES+=(python3 python3-venv)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "deps: Debian packages present"
    exit 0
fi

echo "deps: installing ${missing[*]}"
if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: install them as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
