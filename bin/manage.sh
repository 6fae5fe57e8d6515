#!/usr/bin/env bash
# `bin/manage.sh COMMAND [ARGS...]`: manage.py with the environment of the local instance
# (`make run`): same database, same SECRET_KEY (so tokens from `issue_token` are accepted by it).
# Starts the private services if they are not running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$("$ROOT/bin/services.sh" start 2>&1)" || { echo "$out" >&2; exit 1; }
# shellcheck source=bin/app-env.sh
source "$ROOT/bin/app-env.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/manage.py" "$@"
