#!/usr/bin/env bash
# `make run`: migrate, collect static files, create the demo org/admin once, then serve.
#
# gunicorn (the web app) and a dramatiq worker (background jobs) run together in the foreground;
# Ctrl-C or SIGTERM stops both, and if either one dies the other is stopped too.
# Expects the private services to be running (`bin/services.sh start`, which `make run` does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
PORT="${PORT:-8000}"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "run: something already listens on 127.0.0.1:$PORT; choose another port: make run PORT=8001" >&2
    exit 1
fi

# shellcheck source=bin/app-env.sh
source "$ROOT/bin/app-env.sh"

"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py bootstrap_demo --base-url "http://127.0.0.1:$PORT"

web=""
worker=""
stop_both() {
    trap - INT TERM HUP
    local pid
    for pid in $web $worker; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $web $worker; do
        wait "$pid" 2>/dev/null || true
    done
}
trap 'echo "run: stopping"; stop_both; exit 130' INT
trap 'echo "run: stopping"; stop_both; exit 143' TERM
trap 'echo "run: stopping"; stop_both; exit 129' HUP

# Each server gets its own session (setsid), so a Ctrl-C in the terminal reaches only this script,
# which then asks both to stop exactly once (a second signal makes dramatiq kill its workers).
# gthread workers keep HTTP/1.1 connections alive (sync workers close each one), so the tiles of a map view and
# a client's requests reuse their connection; pixel reads release the GIL inside GDAL.
setsid "$ROOT/.venv/bin/gunicorn" catalogsite.wsgi:application \
    --bind "127.0.0.1:$PORT" \
    --workers "${WEB_CONCURRENCY:-3}" --worker-class gthread --threads "${WEB_THREADS:-4}" \
    --timeout 120 --graceful-timeout 30 --keep-alive 5 \
    --access-logfile - --error-logfile - &
web=$!
# An idle dramatiq consumer polls with a back-off of up to dramatiq_worker_timeout ms (1000 by default);
# 100 ms keeps a small upload's queue wait well under the 2 s upload-to-success target (bench/ingest.py).
dramatiq_worker_timeout="${dramatiq_worker_timeout:-100}" \
    setsid "$PY" manage.py rundramatiq --processes 1 --threads 2 --worker-shutdown-timeout 30000 &
worker=$!

echo "run: serving http://127.0.0.1:$PORT/ (gunicorn pid $web, dramatiq pid $worker); Ctrl-C stops"
rc=0
wait -n "$web" "$worker" || rc=$?
echo "run: a process exited (status $rc); stopping the other" >&2
stop_both
exit "$((rc == 0 ? 1 : rc))"
