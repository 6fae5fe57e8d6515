#!/usr/bin/env bash
# Private PostgreSQL 15 + PostGIS and Redis for development and tests, kept under ./var.
#
#   bin/services.sh start    start whatever is not running yet (idempotent), wait until it answers
#   bin/services.sh stop     stop the private servers of this checkout
#   bin/services.sh status   say what runs where (exit 0 only if both are usable)
#   bin/services.sh env      print `export DATABASE_URL=... REDIS_URL=...` lines, for eval
#
# A DATABASE_URL / REDIS_URL given in the environment (or in ./.env) means "use that server":
# the matching private server is then neither started nor reported.
#
# Ports: 54329 (PostgreSQL) and 63799 (Redis) unless TESSERA_PG_PORT / TESSERA_REDIS_PORT say
# otherwise. When the default port is taken by something else (another checkout's servers, say),
# the next free port is used and remembered under ./var, and `env` reports it.
#
# Layout:  var/pg        PostgreSQL data directory (owned by the `postgres` user when run as root)
#          var/pg-run    PostgreSQL unix socket, server log and chosen port
#          var/redis     Redis append-only file, pidfile, log and chosen port
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
PG_BIN="${TESSERA_PG_BIN:-/usr/lib/postgresql/15/bin}"
PGDATA="$VAR/pg"
PG_RUN="$VAR/pg-run"
PG_LOG="$PG_RUN/postgres.log"
PG_PORT_FILE="$PG_RUN/port"
PG_DEFAULT_PORT=54329
PG_DB=tessera
REDIS_DIR="$VAR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_PORT_FILE="$REDIS_DIR/port"
REDIS_DEFAULT_PORT=63799

log() { echo "services: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- configuration given from outside -----------------------------------------------------------

# Settings read ./.env too (environment wins); honour a DATABASE_URL / REDIS_URL written there.
dotenv_value() {
    local key="$1" file="$ROOT/.env" line value
    [[ -f "$file" ]] || return 0
    line="$(grep -E "^[[:space:]]*(export[[:space:]]+)?${key}[[:space:]]*=" "$file" | tail -n 1 || true)"
    [[ -n "$line" ]] || return 0
    value="${line#*=}"
    value="${value#"${value%%[![:space:]]*}"}"
    value="${value%"${value##*[![:space:]]}"}"
    if [[ "$value" == \"*\" || "$value" == \'*\' ]]; then
        value="${value:1:${#value}-2}"
    fi
    printf '%s' "$value"
}
EXTERNAL_DATABASE_URL="${DATABASE_URL:-$(dotenv_value DATABASE_URL)}"
EXTERNAL_REDIS_URL="${REDIS_URL:-$(dotenv_value REDIS_URL)}"

# --- helpers -------------------------------------------------------------------------------------

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command as the owner of the cluster: `postgres` when we are root (initdb and pg_ctl refuse
# root), ourselves otherwise. From / so that an unreadable working directory does not matter.
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# choose_port DEFAULT EXPLICIT RECORDED: an explicitly asked port must be free; otherwise the
# remembered one if still free, else the first free port from DEFAULT on.
choose_port() {
    local default="$1" explicit="$2" recorded="$3" p
    if [[ -n "$explicit" ]]; then
        port_in_use "$explicit" && die "port $explicit (asked for) is already in use on 127.0.0.1"
        echo "$explicit"
        return
    fi
    if [[ -n "$recorded" ]] && ! port_in_use "$recorded"; then
        echo "$recorded"
        return
    fi
    for ((p = default; p < default + 100; p++)); do
        if ! port_in_use "$p"; then
            echo "$p"
            return
        fi
    done
    die "no free port in $default-$((default + 99))"
}

read_file() { [[ -f "$1" ]] && cat "$1" || true; }

# --- PostgreSQL ----------------------------------------------------------------------------------

# The socket path must fit in sockaddr_un (107 bytes); a deep checkout falls back to /tmp.
pg_socket_dir() {
    local dir="$PG_RUN"
    if ((${#dir} + 20 > 100)); then
        dir="/tmp/tessera-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
    fi
    echo "$dir"
}

pg_running() {
    [[ -f "$PGDATA/PG_VERSION" ]] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

# The port of the running cluster (4th line of postmaster.pid), else the remembered/default one.
pg_port() {
    if pg_running && [[ -r "$PGDATA/postmaster.pid" ]]; then
        sed -n 4p "$PGDATA/postmaster.pid"
        return
    fi
    local recorded
    recorded="$(read_file "$PG_PORT_FILE")"
    echo "${TESSERA_PG_PORT:-${recorded:-$PG_DEFAULT_PORT}}"
}

# initdb and pg_ctl run as `postgres` when we are root: it must be able to reach ./var.
make_traversable_for_postgres() {
    local dir="$1" dirs=() i
    is_root || return 0
    while [[ "$dir" != "/" ]]; do
        dirs+=("$dir")
        dir="$(dirname "$dir")"
    done
    # From the top down: whether a directory is reachable depends on its parents.
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
        if ! runuser -u postgres -- test -x "${dirs[i]}" 2>/dev/null; then
            log "making ${dirs[i]} traversable (o+x) for the postgres user"
            chmod o+x "${dirs[i]}"
        fi
    done
}

pg_prepare_dirs() {
    local sock_dir="$1"
    mkdir -p "$VAR" "$PGDATA" "$PG_RUN" "$sock_dir"
    chmod 700 "$PGDATA"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user: install postgresql-15 (make deps)"
        chown -R postgres: "$PGDATA" "$PG_RUN" "$sock_dir"
        make_traversable_for_postgres "$VAR"
        make_traversable_for_postgres "$sock_dir"
    fi
}

pg_init() {
    [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 not found in $PG_BIN: run 'make deps'"
    log "initialising PostgreSQL cluster in $PGDATA"
    # Superuser `postgres`; trust on the local socket and on 127.0.0.1/::1 only (initdb's default
    # pg_hba.conf lists no other hosts, and the server listens on 127.0.0.1 only).
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=trust >"$PG_RUN/initdb.log" 2>&1 ||
        { cat "$PG_RUN/initdb.log" >&2; die "initdb failed"; }
    echo "include_if_exists = 'tessera.conf'" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
}

pg_write_conf() {
    local port="$1" sock_dir="$2"
    # Rewritten at every start: the port and socket directory may change between starts.
    as_pg tee "$PGDATA/tessera.conf" >/dev/null <<EOF
# Written by bin/services.sh at every start; edits are lost.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock_dir'
# A development/test cluster: losing the last transactions in a crash is acceptable, waiting for
# every commit to reach the disk is not (it slows test database set-up a lot).
synchronous_commit = off
max_connections = 200
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

pg_psql() {
    local port="$1" db="$2"
    shift 2
    PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(pg_socket_dir)" -p "$port" -U postgres -d "$db" "$@"
}

pg_ensure_db() {
    local port="$1"
    # PostGIS in template1 first, so that `tessera` and pytest-django's `test_tessera` inherit it.
    pg_psql "$port" template1 -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
    if [[ -z "$(pg_psql "$port" postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
        log "creating database $PG_DB"
        pg_psql "$port" postgres -c "CREATE DATABASE $PG_DB"
    fi
    pg_psql "$port" "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

pg_wait_ready() {
    local port="$1" i
    for ((i = 0; i < 60; i++)); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
            return 0
        fi
        sleep 0.5
    done
    tail -n 30 "$PG_LOG" >&2 || true
    die "PostgreSQL did not accept connections on 127.0.0.1:$port within 30 s"
}

pg_start() {
    local sock_dir port
    sock_dir="$(pg_socket_dir)"
    if pg_running; then
        port="$(pg_port)"
        if [[ -n "${TESSERA_PG_PORT:-}" && "$TESSERA_PG_PORT" != "$port" ]]; then
            log "warning: PostgreSQL already runs on port $port, not $TESSERA_PG_PORT (stop, then start, to move it)"
        fi
        pg_wait_ready "$port"
        pg_ensure_db "$port"
        log "PostgreSQL already running on 127.0.0.1:$port"
        return
    fi
    [[ -x "$PG_BIN/pg_ctl" ]] || die "PostgreSQL 15 not found in $PG_BIN: run 'make deps'"
    pg_prepare_dirs "$sock_dir"
    [[ -f "$PGDATA/PG_VERSION" ]] || pg_init
    port="$(choose_port "$PG_DEFAULT_PORT" "${TESSERA_PG_PORT:-}" "$(read_file "$PG_PORT_FILE")")"
    pg_write_conf "$port" "$sock_dir"
    echo "$port" >"$PG_PORT_FILE"
    log "starting PostgreSQL on 127.0.0.1:$port (data $PGDATA, log $PG_LOG)"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 start >/dev/null; then
        tail -n 30 "$PG_LOG" >&2 || true
        die "PostgreSQL failed to start"
    fi
    pg_wait_ready "$port"
    pg_ensure_db "$port"
}

pg_stop() {
    if pg_running; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
    fi
}

pg_url() { echo "postgis://postgres@127.0.0.1:$(pg_port)/$PG_DB"; }

# --- Redis ---------------------------------------------------------------------------------------

redis_pid() {
    local pid
    pid="$(read_file "$REDIS_PIDFILE")"
    # A pidfile left over from before a reboot may name an unrelated process: check what it is.
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
        [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]] && echo "$pid"
}

redis_port() {
    local recorded
    recorded="$(read_file "$REDIS_PORT_FILE")"
    if [[ -n "$(redis_pid || true)" && -n "$recorded" ]]; then
        echo "$recorded"
    else
        echo "${TESSERA_REDIS_PORT:-${recorded:-$REDIS_DEFAULT_PORT}}"
    fi
}

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]; }

redis_start() {
    local port i
    if [[ -n "$(redis_pid || true)" ]]; then
        port="$(redis_port)"
        if [[ -n "${TESSERA_REDIS_PORT:-}" && "$TESSERA_REDIS_PORT" != "$port" ]]; then
            log "warning: Redis already runs on port $port, not $TESSERA_REDIS_PORT (stop, then start, to move it)"
        fi
        log "Redis already running on 127.0.0.1:$port"
        return
    fi
    command -v redis-server >/dev/null || die "redis-server not found: run 'make deps'"
    mkdir -p "$REDIS_DIR"
    rm -f "$REDIS_PIDFILE"
    port="$(choose_port "$REDIS_DEFAULT_PORT" "${TESSERA_REDIS_PORT:-}" "$(read_file "$REDIS_PORT_FILE")")"
    echo "$port" >"$REDIS_PORT_FILE"
    log "starting Redis on 127.0.0.1:$port (dir $REDIS_DIR)"
    (cd "$REDIS_DIR" && redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
        --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_DIR/redis.log" \
        --save "" --appendonly yes)
    for ((i = 0; i < 60; i++)); do
        redis_ping "$port" && return 0
        sleep 0.5
    done
    tail -n 30 "$REDIS_DIR/redis.log" >&2 || true
    die "Redis did not answer on 127.0.0.1:$port within 30 s"
}

redis_stop() {
    local pid i
    pid="$(redis_pid || true)"
    [[ -n "$pid" ]] || return 0
    log "stopping Redis (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$REDIS_PIDFILE"; return 0; }
        sleep 0.5
    done
    die "Redis (pid $pid) did not stop within 30 s"
}

redis_url() { echo "redis://127.0.0.1:$(redis_port)/0"; }

# --- commands ------------------------------------------------------------------------------------

cmd_start() {
    if [[ -n "$EXTERNAL_DATABASE_URL" ]]; then
        log "DATABASE_URL is set: not starting the private PostgreSQL"
    else
        pg_start
    fi
    if [[ -n "$EXTERNAL_REDIS_URL" ]]; then
        log "REDIS_URL is set: not starting the private Redis"
    else
        redis_start
    fi
}

cmd_stop() {
    pg_stop
    redis_stop
}

cmd_status() {
    local ok=0 port pid
    if [[ -n "$EXTERNAL_DATABASE_URL" ]]; then
        echo "postgres: external (DATABASE_URL is set)"
    elif pg_running; then
        port="$(pg_port)"
        echo "postgres: running on 127.0.0.1:$port (pid $(head -n 1 "$PGDATA/postmaster.pid"), data $PGDATA)"
    else
        echo "postgres: stopped"
        ok=3
    fi
    if [[ -n "$EXTERNAL_REDIS_URL" ]]; then
        echo "redis:    external (REDIS_URL is set)"
    elif pid="$(redis_pid)"; then
        echo "redis:    running on 127.0.0.1:$(redis_port) (pid $pid, dir $REDIS_DIR)"
    else
        echo "redis:    stopped"
        ok=3
    fi
    return "$ok"
}

cmd_env() {
    local db redis
    db="${EXTERNAL_DATABASE_URL:-$(pg_url)}"
    redis="${EXTERNAL_REDIS_URL:-$(redis_url)}"
    printf 'export DATABASE_URL=%q\n' "$db"
    printf 'export REDIS_URL=%q\n' "$redis"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        echo "usage: $0 {start|stop|status|env}" >&2
        exit 2
        ;;
esac
