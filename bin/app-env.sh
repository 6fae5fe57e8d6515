# shellcheck shell=bash
# Sourced by bin/run.sh and bin/manage.sh: the environment the local instance (`make run`) runs with.
#
# DEBUG off, ALLOWED_HOSTS for localhost, DATABASE_URL/REDIS_URL of the private services (or the
# ones given), and a persistent random SECRET_KEY kept in var/secret_key (mode 600), made on first
# use. SECRET_KEY and ALLOWED_HOSTS given in the environment or in .env are left alone.
# Management commands must share the server's key: access tokens from `issue_token` are signed with it.
# Expects ROOT (the repository root) to be set.

# True if .env assigns KEY (settings read .env for whatever the environment does not set).
_tessera_in_dotenv() {
    grep -qE "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" "$ROOT/.env" 2>/dev/null
}

eval "$("$ROOT/bin/services.sh" env)"
export DEBUG=false
unset TESSERA_TESTING

if [[ -z "${ALLOWED_HOSTS:-}" ]] && ! _tessera_in_dotenv ALLOWED_HOSTS; then
    export ALLOWED_HOSTS=127.0.0.1,localhost
fi

if [[ -z "${SECRET_KEY:-}" ]] && ! _tessera_in_dotenv SECRET_KEY; then
    if [[ ! -s "$ROOT/var/secret_key" ]]; then
        mkdir -p "$ROOT/var"
        (umask 077 && "$ROOT/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))' \
            >"$ROOT/var/secret_key")
        echo "generated $ROOT/var/secret_key" >&2
    fi
    chmod 600 "$ROOT/var/secret_key"
    SECRET_KEY="$(cat "$ROOT/var/secret_key")"
    export SECRET_KEY
fi
