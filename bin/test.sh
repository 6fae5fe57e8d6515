#!/usr/bin/env bash
# `make test`: ruff, the migrations check and pytest, against the private services.
#
# All three steps run even when an earlier one fails, so one run reports every problem; the exit
# status is non-zero if any failed. pytest collecting no test at all (its exit status 5) counts as
# a failure. Extra pytest arguments: PYTEST_ARGS='-k name -x' make test.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"

eval "$(bin/services.sh env)" || exit 1
export TESSERA_TESTING=1
# (passwords masked: CI logs are read by others)
echo "test: DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL" | sed -E 's#(://[^:/@]*:)[^@/]*@#\1***@#g'

failed=()

echo "==> ruff check"
"$ROOT/.venv/bin/ruff" check . || failed+=("ruff check")

echo "==> manage.py makemigrations --check --dry-run"
"$PY" manage.py makemigrations --check --dry-run || failed+=("makemigrations --check")

# pytest-django creates (and drops) test_<database name>. Several runs share one server (developers
# on the same checkout, each running tests), so each run gets its own name: test_<name>_run<pid>.
pytest_database_url="$("$PY" - "$$" <<'PYEOF'
import os, sys, urllib.parse as up
url = up.urlsplit(os.environ["DATABASE_URL"])
name = url.path.lstrip("/") or "tessera"
print(up.urlunsplit(url._replace(path=f"/{name}_run{sys.argv[1]}")))
PYEOF
)" || exit 1

echo "==> pytest ${PYTEST_ARGS:-}"
mkdir -p var/log
log="var/log/pytest-$$.log"
eval "set -- ${PYTEST_ARGS:-}"
color=()
[[ -t 1 ]] && color=(--color=yes)
DATABASE_URL="$pytest_database_url" "$PY" -m pytest "${color[@]}" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# The closing line, "=== 3 failed, 527 passed in 80.1s ===" (undecorated with -q).
summary="$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" |
    grep -E '(passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?|no tests ran).* in [0-9.]+s' |
    tail -n 1 | sed -E 's/^=+ //; s/ =+$//')"
mv -f "$log" var/log/pytest.log
case "$rc" in
    0) ;;
    5) failed+=("pytest (no tests collected)") ;;
    *) failed+=("pytest (exit status $rc)") ;;
esac

if ((${#failed[@]})); then
    echo
    echo "test: pytest summary: ${summary:-none (pytest did not finish)}"
    printf 'test: FAILED: %s\n' "${failed[@]}"
    exit 1
fi
