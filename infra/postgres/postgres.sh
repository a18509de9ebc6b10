#!/usr/bin/env bash
# Private, throw-away PostgreSQL server for modelbus tests and local development.
#
# Why this exists: CI runs on a fresh machine where nothing was installed by
# hand, there is no systemd, and we run as root (which postgres refuses). So the
# project installs Debian's `postgresql` package itself and runs its own cluster
# as the `postgres` OS user, on 127.0.0.1 only, never touching the Debian "main"
# cluster on 5432. Run with --help for usage.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"
PROG="${0##*/}"

DB_NAME="modelbus"
DB_SUPERUSER="modelbus"
DEFAULT_PORT="${MODELBUS_PG_PORT:-55432}"
DEFAULT_DATA_DIR="${MODELBUS_PG_DATA_DIR:-$REPO_ROOT/.cache/pg-data}"
OS_USER="${MODELBUS_PG_OS_USER:-postgres}"
FALLBACK_ROOT="${MODELBUS_PG_FALLBACK_DIR:-/tmp/modelbus-pg-$(id -u)}"
START_TIMEOUT="${MODELBUS_PG_START_TIMEOUT:-60}"
LOCK_TIMEOUT=180
# Exit code for "the requested port is already taken", so callers can retry.
EXIT_PORT_BUSY=3
# File descriptor of the per-cluster flock, once taken.
LOCK_FD=""

usage() {
    cat <<EOF
Usage: $PROG COMMAND [OPTIONS]

Runs a private PostgreSQL server for modelbus tests (127.0.0.1 only, trust auth,
fsync off). Installs Debian's 'postgresql' package with apt-get when missing.

Commands:
  install                       Find initdb/pg_ctl/postgres (newest major under
                                /usr/lib/postgresql/*/bin); apt-get install
                                postgresql if they are missing. Idempotent.
  start [--port P] [--data-dir D] [--owner-pid PID]
                                Install if needed, initdb D if needed, start the
                                server and create database '$DB_NAME'. Prints the
                                SQLAlchemy URL as the last line on stdout.
                                --owner-pid: stop the server when PID exits (the
                                tests use it so a crashed pytest leaks nothing).
                                Exit code $EXIT_PORT_BUSY: the port is already taken.
  stop  [--data-dir D] [--purge]
                                Stop the server (pg_ctl stop -m fast). Idempotent.
                                --purge also deletes the cluster's data.
  status [--data-dir D]         Exit 0 when the server is running, 1 when not.
  url   [--port P]              Print the SQLAlchemy URL.
  -h, --help                    Show this help.

Defaults:
  port      \$MODELBUS_PG_PORT or 55432
  data dir  \$MODELBUS_PG_DATA_DIR or <repo>/.cache/pg-data
            (relocated to $FALLBACK_ROOT/<name>-<hash> when the '$OS_USER'
             OS user cannot reach it, e.g. a repo cloned under /root)

Environment:
  MODELBUS_DATABASE_URL         If it points at PostgreSQL, start/stop do nothing
                                and url/start print it instead.
  MODELBUS_PG_PORT, MODELBUS_PG_DATA_DIR
                                Defaults for --port / --data-dir.
  MODELBUS_PG_OS_USER           OS user that runs postgres when we are root
                                (default postgres; created if missing).
  MODELBUS_PG_FALLBACK_DIR      Where unreachable data dirs are relocated
                                (default /tmp/modelbus-pg-<uid>).
  MODELBUS_PG_START_TIMEOUT     Seconds to wait for the server (default 60).

Examples:
  $PROG start && export MODELBUS_DATABASE_URL="\$($PROG url)"
  $PROG start --port 55433 --data-dir /tmp/pg-a
  $PROG stop --data-dir /tmp/pg-a --purge
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --------------------------------------------------------------------------
# External server
# --------------------------------------------------------------------------

external_url() {
    # Prints MODELBUS_DATABASE_URL when it names a PostgreSQL server.
    local url="${MODELBUS_DATABASE_URL:-}"
    case "$url" in
        postgresql:* | postgresql+*:* | postgres:*) printf '%s\n' "$url" ;;
        *) return 1 ;;
    esac
}

# SQLAlchemy URL -> libpq URI (drop "+driver").
libpq_url() { printf '%s\n' "$1" | sed -E 's#^postgres(ql)?(\+[A-Za-z0-9_]+)?://#postgresql://#'; }

sqlalchemy_url() { printf 'postgresql+psycopg://%s@127.0.0.1:%s/%s\n' "$DB_SUPERUSER" "$1" "$DB_NAME"; }

# --------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------

PG_BIN=""

find_bin() {
    # Sets PG_BIN to the newest /usr/lib/postgresql/<major>/bin holding the
    # server binaries; returns 1 when there is none.
    local dir candidate=""
    while IFS= read -r dir; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            candidate="$dir"
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V)
    [[ -n "$candidate" ]] || return 1
    PG_BIN="$candidate"
}

apt_install_postgresql() {
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available"
    [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed; run '$PROG install' as root (apt-get)"
    # Keep the package's postinst from starting the Debian main cluster: there
    # is no systemd here and we never use that cluster. Only add a
    # policy-rc.d if the machine has none (Docker images usually ship one).
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    {
        log "running apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=300 >&2 &&
            log "running apt-get install -y postgresql" &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                -o DPkg::Lock::Timeout=300 \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                postgresql >&2
    } || rc=$?
    if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
    [[ $rc -eq 0 ]] || die "apt-get failed (exit $rc)"
}

cmd_install() {
    if find_bin; then
        log "PostgreSQL already installed: $PG_BIN ($("$PG_BIN/postgres" --version))"
        return 0
    fi
    # Concurrent starts (pytest-xdist, parallel CI steps) must not race apt-get.
    local fd
    prepare_fallback_root
    exec {fd}>"$FALLBACK_ROOT/install.lock"
    flock -w 900 "$fd" || die "timed out waiting for $FALLBACK_ROOT/install.lock"
    if find_bin; then
        exec {fd}>&-
        log "PostgreSQL was installed by a concurrent run: $PG_BIN"
        return 0
    fi
    log "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; installing"
    apt_install_postgresql
    exec {fd}>&-
    find_bin || die "apt-get installed postgresql but no initdb/pg_ctl/postgres under /usr/lib/postgresql/*/bin"
    log "installed PostgreSQL: $PG_BIN ($("$PG_BIN/postgres" --version))"
}

# --------------------------------------------------------------------------
# Running as the postgres OS user
# --------------------------------------------------------------------------

# postgres refuses to run as root; when we are root everything that touches
# the cluster runs as $OS_USER. As a normal user we run as ourselves.
as_pg() {
    # The lock fd is closed for the child: a postmaster started by pg_ctl would
    # otherwise inherit it and hold the lock for its whole life.
    if [[ -n "$LOCK_FD" ]]; then
        _as_pg "$@" {LOCK_FD}>&-
    else
        _as_pg "$@"
    fi
}

_as_pg() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$OS_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_os_user() {
    [[ $EUID -eq 0 ]] || return 0
    id -u "$OS_USER" >/dev/null 2>&1 && return 0
    log "creating OS user '$OS_USER'"
    useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
        --shell /bin/bash "$OS_USER"
}

own_dir() {
    # Hands a directory we created to the postgres user (mode 0700, as initdb wants).
    if [[ $EUID -eq 0 ]]; then chown "$OS_USER:" "$1"; fi
    chmod 700 "$1"
}

# --------------------------------------------------------------------------
# Data directory resolution
# --------------------------------------------------------------------------

abs_path() { realpath -m -- "$1"; }

fallback_dir_for() {
    # Deterministic relocation target for a requested data dir, so that start,
    # status and stop with the same --data-dir always find the same cluster.
    local req="$1" hash
    hash="$(printf '%s' "$req" | sha256sum | cut -c1-12)"
    printf '%s/%s-%s\n' "$FALLBACK_ROOT" "$(basename -- "$req")" "$hash"
}

prepare_fallback_root() {
    if [[ -L "$FALLBACK_ROOT" ]]; then die "$FALLBACK_ROOT is a symlink; refusing to use it"; fi
    (umask 022 && mkdir -p -- "$FALLBACK_ROOT")
    if [[ "$(stat -c %u -- "$FALLBACK_ROOT")" != "$EUID" ]]; then
        die "$FALLBACK_ROOT is not owned by uid $EUID; remove it or set MODELBUS_PG_FALLBACK_DIR"
    fi
    chmod 755 -- "$FALLBACK_ROOT"
}

reachable_by_pg() {
    # True when the postgres user can traverse every directory up to $1 (which
    # we create as root first). `test -x` fails if any ancestor blocks search.
    local parent="$1"
    (umask 022 && mkdir -p -- "$parent")
    as_pg test -x "$parent" 2>/dev/null
}

DATA_DIR=""

resolve_data_dir() {
    # Sets DATA_DIR to where the cluster for the requested dir lives (or will).
    # $2 = "create" decides a location for a new cluster; otherwise only looks.
    local req fb
    req="$(abs_path "$1")"
    fb="$(fallback_dir_for "$req")"
    if [[ -f "$req/PG_VERSION" ]]; then
        DATA_DIR="$req"
    elif [[ -f "$fb/PG_VERSION" ]]; then
        DATA_DIR="$fb"
    elif [[ "${2:-}" != create ]]; then
        DATA_DIR="$req"
    elif [[ $EUID -ne 0 ]] || reachable_by_pg "$(dirname -- "$req")"; then
        DATA_DIR="$req"
    else
        log "'$OS_USER' cannot reach $(dirname -- "$req") (e.g. under /root or pytest's 0700 tmp);"
        log "relocating the cluster to $fb"
        prepare_fallback_root
        DATA_DIR="$fb"
    fi
    if [[ "${2:-}" == create && -f "$DATA_DIR/PG_VERSION" ]] && ! as_pg test -r "$DATA_DIR/PG_VERSION" 2>/dev/null; then
        die "cluster $DATA_DIR exists but '$OS_USER' cannot reach it; fix permissions or delete it"
    fi
}

short_socket_dir() { printf '%s/sock-%s\n' "$FALLBACK_ROOT" "$(printf '%s' "$1" | sha256sum | cut -c1-12)"; }

socket_dir_for() {
    # Unix socket lives inside the data dir, unless that path would be longer
    # than a sockaddr_un allows (107 bytes for ".../.s.PGSQL.<port>").
    local dir="$1" port="$2"
    if ((${#dir} + ${#port} + 12 <= 100)); then
        printf '%s\n' "$dir"
    else
        short_socket_dir "$dir"
    fi
}

running_port() { sed -n 4p "$1/postmaster.pid" 2>/dev/null || true; }

is_running() { [[ -f "$1/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$1" >/dev/null 2>&1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

LOCK_FILE=""

take_lock() {
    # Serialises concurrent start/stop on the same cluster (e.g. pytest-xdist).
    local lock_file
    prepare_fallback_root
    lock_file="$FALLBACK_ROOT/lock-$(printf '%s' "$(abs_path "$1")" | sha256sum | cut -c1-12)"
    LOCK_FILE="$lock_file"
    exec {LOCK_FD}>"$lock_file"
    flock -w "$LOCK_TIMEOUT" "$LOCK_FD" || die "timed out waiting for lock $lock_file"
}

# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

init_cluster() {
    local dir="$1"
    log "initialising a new cluster in $dir"
    if [[ -e "$dir" ]]; then
        [[ -d "$dir" ]] || die "$dir exists and is not a directory"
    else
        (umask 077 && mkdir -p -- "$dir")
    fi
    own_dir "$dir"
    as_pg "$PG_BIN/initdb" -D "$dir" -U "$DB_SUPERUSER" --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >&2 ||
        die "initdb failed for $dir"
    # shellcheck disable=SC2016 # expanded by the inner sh, as the postgres user
    as_pg sh -c 'printf "%s\n" "$1" >>"$2/postgresql.conf"' sh \
        "include_if_exists = 'modelbus.conf'" "$dir"
}

write_runtime_conf() {
    # Regenerated at each start so the port and settings always match this script.
    local dir="$1" port="$2" sock="$3"
    # shellcheck disable=SC2016 # expanded by the inner sh, as the postgres user
    as_pg sh -c 'cat >"$1/modelbus.conf"' sh "$dir" <<EOF
# Written by infra/postgres/postgres.sh at each start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
# Test speed over durability: this cluster is disposable.
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
EOF
}

wait_ready() {
    local port="$1" deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U "$DB_SUPERUSER"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

ensure_database() {
    local port="$1" exists
    exists="$("$PG_BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$port" -U "$DB_SUPERUSER" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")"
    if [[ "$exists" != 1 ]]; then
        log "creating database '$DB_NAME'"
        "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$DB_SUPERUSER" -d postgres \
            -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_SUPERUSER\"" >&2
    fi
}

watch_owner() {
    # Detached watchdog: stops the cluster once the owner process is gone. It
    # stops watching if that postmaster goes away (a later start has its own).
    local owner="$1" dir="$2" postmaster
    postmaster="$(sed -n 1p "$dir/postmaster.pid" 2>/dev/null || true)"
    [[ -n "$postmaster" ]] || return 0
    while kill -0 "$owner" 2>/dev/null; do
        [[ "$(sed -n 1p "$dir/postmaster.pid" 2>/dev/null || true)" == "$postmaster" ]] || return 0
        sleep 1
    done
    if [[ "$(sed -n 1p "$dir/postmaster.pid" 2>/dev/null || true)" == "$postmaster" ]]; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$dir" -m fast -w -t "$START_TIMEOUT" >/dev/null 2>&1 || true
    fi
}

cmd_start() {
    local port="$1" req_dir="$2" owner_pid="$3" url sock current started=$SECONDS
    if url="$(external_url)"; then
        log "MODELBUS_DATABASE_URL points at PostgreSQL; not starting a local server"
        printf '%s\n' "$url"
        return 0
    fi
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        die "invalid port: $port"
    fi
    if [[ -n "$owner_pid" ]] && ! { [[ "$owner_pid" =~ ^[0-9]+$ ]] && kill -0 "$owner_pid" 2>/dev/null; }; then
        die "--owner-pid $owner_pid is not a running process"
    fi
    cmd_install
    ensure_os_user
    take_lock "$req_dir"
    resolve_data_dir "$req_dir" create

    if is_running "$DATA_DIR"; then
        current="$(running_port "$DATA_DIR")"
        if [[ "$current" == "$port" ]]; then
            log "already running on port $port (data dir $DATA_DIR)"
        else
            log "running on port ${current:-?}, restarting on port $port"
            as_pg "$PG_BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t "$START_TIMEOUT" >&2
        fi
    fi

    if ! is_running "$DATA_DIR"; then
        if port_in_use "$port"; then
            log "error: port $port on 127.0.0.1 is already in use"
            exit "$EXIT_PORT_BUSY"
        fi
        if [[ ! -f "$DATA_DIR/PG_VERSION" ]]; then init_cluster "$DATA_DIR"; fi
        sock="$(socket_dir_for "$DATA_DIR" "$port")"
        if [[ "$sock" != "$DATA_DIR" ]]; then
            prepare_fallback_root
            mkdir -p -- "$sock"
            own_dir "$sock"
        fi
        write_runtime_conf "$DATA_DIR" "$port" "$sock"
        log "starting PostgreSQL on 127.0.0.1:$port (data dir $DATA_DIR)"
        if ! as_pg "$PG_BIN/pg_ctl" start -D "$DATA_DIR" -l "$DATA_DIR/server.log" \
            -w -t "$START_TIMEOUT" >&2; then
            log "pg_ctl start failed; last lines of $DATA_DIR/server.log:"
            tail -n 30 "$DATA_DIR/server.log" >&2 || true
            exit 1
        fi
    fi

    wait_ready "$port" || die "server did not accept connections within ${START_TIMEOUT}s"
    ensure_database "$port"
    if [[ -n "$owner_pid" ]]; then
        # Fully detached: no lock fd, no stdout/stderr (the caller may be
        # reading them until EOF), own session so it outlives this script.
        setsid bash "$SCRIPT_DIR/$PROG" _watch "$owner_pid" "$DATA_DIR" \
            </dev/null >/dev/null 2>&1 {LOCK_FD}>&- &
        log "will stop the server when process $owner_pid exits"
    fi
    log "ready in $((SECONDS - started))s"
    sqlalchemy_url "$port"
}

cmd_stop() {
    local req_dir="$1" purge="$2"
    if external_url >/dev/null; then
        log "MODELBUS_DATABASE_URL points at PostgreSQL; not stopping anything"
        return 0
    fi
    if ! find_bin; then
        log "PostgreSQL is not installed; nothing to stop"
        return 0
    fi
    take_lock "$req_dir"
    resolve_data_dir "$req_dir"
    if is_running "$DATA_DIR"; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t "$START_TIMEOUT" >&2
    else
        log "not running (data dir $DATA_DIR)"
    fi
    if [[ "$purge" == 1 ]]; then
        if [[ -f "$DATA_DIR/PG_VERSION" ]]; then
            log "deleting cluster data in $DATA_DIR"
            rm -rf -- "$DATA_DIR"
        fi
        rm -rf -- "$(short_socket_dir "$DATA_DIR")" "$LOCK_FILE"
    fi
}

cmd_status() {
    local req_dir="$1" url
    if url="$(external_url)"; then
        find_bin || die "PostgreSQL client tools are not installed"
        if "$PG_BIN/pg_isready" -q -d "$(libpq_url "$url")"; then
            log "external server is accepting connections"
            return 0
        fi
        log "external server is not accepting connections"
        return 1
    fi
    if ! find_bin; then
        log "PostgreSQL is not installed"
        return 1
    fi
    resolve_data_dir "$req_dir"
    if is_running "$DATA_DIR"; then
        log "running on 127.0.0.1:$(running_port "$DATA_DIR") (data dir $DATA_DIR)"
        return 0
    fi
    log "not running (data dir $DATA_DIR)"
    return 1
}

cmd_url() {
    local url
    if url="$(external_url)"; then
        printf '%s\n' "$url"
    else
        sqlalchemy_url "$1"
    fi
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    if [[ "$cmd" == _watch ]]; then
        find_bin
        watch_owner "$@"
        return 0
    fi
    local port="$DEFAULT_PORT" data_dir="$DEFAULT_DATA_DIR" purge=0 owner_pid=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
            --port=*) port="${1#*=}"; shift ;;
            --data-dir) [[ $# -ge 2 ]] || die "--data-dir needs a value"; data_dir="$2"; shift 2 ;;
            --data-dir=*) data_dir="${1#*=}"; shift ;;
            --owner-pid) [[ $# -ge 2 ]] || die "--owner-pid needs a value"; owner_pid="$2"; shift 2 ;;
            --owner-pid=*) owner_pid="${1#*=}"; shift ;;
            --purge) purge=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option: $1 (see --help)" ;;
        esac
    done
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start "$port" "$data_dir" "$owner_pid" ;;
        stop) cmd_stop "$data_dir" "$purge" ;;
        status) cmd_status "$data_dir" ;;
        url) cmd_url "$port" ;;
        -h | --help | help) usage ;;
        "") usage >&2; exit 2 ;;
        *) die "unknown command: $cmd (see --help)" ;;
    esac
}

main "$@"
