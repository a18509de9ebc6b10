#!/usr/bin/env bash
# The local modelbus stack as background processes: Kafka broker, topics, registry.
# `up` returns only when every part answers its health check.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${MODELBUS_RUN_DIR:-$ROOT/.cache/stack}"
BIN="$ROOT/.venv/bin"
KAFKA_PORT="${MODELBUS_KAFKA_PORT:-9092}"
REGISTRY_PORT="${MODELBUS_REGISTRY_PORT:-8000}"
GATEWAY_PORT="${MODELBUS_GATEWAY_PORT:-8080}"
DELIVERY_PORT="${MODELBUS_DELIVERY_HEALTH_PORT:-8003}"
INFERENCE_PORT="${MODELBUS_WORKER_PORT:-8010}"
FEEDBACK_PORT="${MODELBUS_FEEDBACK_HEALTH_PORT:-8005}"
DRIFT_PORT="${MODELBUS_DRIFT_HEALTH_PORT:-8006}"
HEALTH_TIMEOUT="${MODELBUS_HEALTH_TIMEOUT:-60}"

EXTERNAL_KAFKA="${MODELBUS_KAFKA_BOOTSTRAP:-}"
export MODELBUS_KAFKA_BOOTSTRAP="${EXTERNAL_KAFKA:-127.0.0.1:$KAFKA_PORT}"
export MODELBUS_DATABASE_URL="${MODELBUS_DATABASE_URL:-sqlite:///$RUN_DIR/registry.db}"
export MODELBUS_ARTIFACT_DIR="${MODELBUS_ARTIFACT_DIR:-$RUN_DIR/blobs}"
export MODELBUS_REGISTRY_PORT="$REGISTRY_PORT"
export MODELBUS_REGISTRY_URL="${MODELBUS_REGISTRY_URL:-http://127.0.0.1:$REGISTRY_PORT}"
export MODELBUS_JOBS_DATABASE_URL="${MODELBUS_JOBS_DATABASE_URL:-sqlite:///$RUN_DIR/jobs.db}"
export MODELBUS_GATEWAY_PORT="$GATEWAY_PORT"
export MODELBUS_DELIVERY_HEALTH_PORT="$DELIVERY_PORT"
export MODELBUS_FEEDBACK_HEALTH_PORT="$FEEDBACK_PORT"
export MODELBUS_DRIFT_HEALTH_PORT="$DRIFT_PORT"
export MODELBUS_FEEDBACK_DATABASE_URL="${MODELBUS_FEEDBACK_DATABASE_URL:-sqlite:///$RUN_DIR/feedback.db}"
export MODELBUS_WEBHOOK_ALLOWLIST="${MODELBUS_WEBHOOK_ALLOWLIST:-127.0.0.1}"
export MODELBUS_RATE_LIMIT_PER_SECOND="${MODELBUS_RATE_LIMIT_PER_SECOND:-500}"
export MODELBUS_RATE_LIMIT_BURST="${MODELBUS_RATE_LIMIT_BURST:-1000}"
SERVICES=(registry gateway inference delivery feedback drift)

log() { printf '[stack] %s\n' "$*"; }

usage() {
  cat <<USAGE
Usage: infra/stack.sh up|down|status

  up      start Kafka (unless MODELBUS_KAFKA_BOOTSTRAP names a cluster), create the topics,
          start the registry (:$REGISTRY_PORT), gateway (:$GATEWAY_PORT), an inference worker
          (health :$INFERENCE_PORT), delivery (health :$DELIVERY_PORT), feedback (HTTP API and
          health :$FEEDBACK_PORT) and drift (HTTP API and health :$DRIFT_PORT); waits until
          each is healthy
  down    stop everything 'up' started
  status  say what runs

State, logs and the generated admin key live in $RUN_DIR.
USAGE
}

secret_file() { # name command... : run the command once, keep its output private in RUN_DIR
  local file="$RUN_DIR/$1"
  shift
  if [[ ! -s "$file" ]]; then
    mkdir -p "$RUN_DIR"
    (umask 077; "$@" >"$file.tmp" && mv "$file.tmp" "$file")
  fi
  cat "$file"
}

admin_key() {
  secret_file admin-key "$BIN/python" -c 'import secrets; print("mbk_" + secrets.token_urlsafe(32))'
}

service_key() { # service: a reader key the service uses to call the registry
  secret_file "$1-key" "$BIN/modelbus" registry create-key \
    --name "$1-$("$BIN/python" -c 'import secrets; print(secrets.token_hex(3))')" --role reader
}

wait_http() { # name url
  local name="$1" url="$2" deadline=$((SECONDS + HEALTH_TIMEOUT))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "$name did not become healthy within ${HEALTH_TIMEOUT}s; last log lines:"
      tail -n 30 "$RUN_DIR/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

pid_state() { # pid: "<state> <start time>" from /proc/<pid>/stat; fails if there is no such process
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  local -a fields
  read -r -a fields <<<"${stat##*) }" # the fields after the command name, which may hold spaces
  printf '%s %s' "${fields[0]}" "${fields[19]}" # fields 3 (state) and 22 (start time) of stat
}

pid_of() { # name: the pid its pid file records (first line)
  head -n 1 "$RUN_DIR/$1.pid" 2>/dev/null || true
}

running() { # name: its pid file names a live process, not a zombie, and the very one we started
  # A crash leaves the pid file behind; the pid may be dead, a zombie, or reused by another
  # program. The start time recorded with the pid tells the process we started from those.
  local pid_file="$RUN_DIR/$1.pid" pid="" started="" info state now
  [[ -f "$pid_file" ]] || return 1
  { read -r pid || true; read -r started || true; } <"$pid_file"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  info="$(pid_state "$pid")" || return 1
  read -r state now <<<"$info"
  [[ "$state" != [ZX] ]] || return 1
  if [[ -n "$started" ]]; then
    [[ "$now" == "$started" ]]
  else # a pid file without a start time: its command line must be ours
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "modelbus $1 "
  fi
}

start_service() { # name health-url command...
  local name="$1" url="$2"
  shift 2
  if running "$name"; then
    log "$name already runs (pid $(pid_of "$name"))"
    return 0
  fi
  mkdir -p "$RUN_DIR"
  nohup "$@" >>"$RUN_DIR/$name.log" 2>&1 &
  local pid=$! info
  if info="$(pid_state "$pid")"; then
    printf '%s\n%s\n' "$pid" "${info#* }" >"$RUN_DIR/$name.pid"
  else # gone already: wait_http reports it
    printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
  fi
  wait_http "$name" "$url"
  log "$name healthy at $url (pid $pid, log $RUN_DIR/$name.log)"
}

stop_service() { # name
  local pid_file="$RUN_DIR/$1.pid"
  if running "$1"; then
    local pid
    pid="$(pid_of "$1")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "$1 stopped"
  fi
  rm -f "$pid_file"
}

kafka() { # the local broker, unless the caller named an existing cluster
  if [[ -n "$EXTERNAL_KAFKA" ]]; then
    "$ROOT/infra/kafka/kafka.sh" "$@"
  else
    env -u MODELBUS_KAFKA_BOOTSTRAP "$ROOT/infra/kafka/kafka.sh" "$@"
  fi
}

up() {
  mkdir -p "$RUN_DIR"
  kafka start --port "$KAFKA_PORT" --controller-port "$((KAFKA_PORT + 1))"
  "$BIN/modelbus" topics create
  MODELBUS_ADMIN_API_KEY="$(admin_key)" start_service registry \
    "http://127.0.0.1:$REGISTRY_PORT/readyz" "$BIN/modelbus" registry serve
  local webhook_secret
  webhook_secret="$(secret_file webhook-secret "$BIN/modelbus" delivery new-secret)"
  # Workers seal the callbacks they copy; delivery sends only to sealed or gateway ones.
  MODELBUS_CALLBACK_SEAL_KEY="$(secret_file callback-seal-key "$BIN/python" -c \
    'import secrets; print(secrets.token_urlsafe(32))')"
  export MODELBUS_CALLBACK_SEAL_KEY
  MODELBUS_REGISTRY_API_KEY="$(service_key gateway)" start_service gateway \
    "http://127.0.0.1:$GATEWAY_PORT/readyz" "$BIN/modelbus" gateway serve
  MODELBUS_REGISTRY_API_KEY="$(service_key inference)" start_service inference \
    "http://127.0.0.1:$INFERENCE_PORT/healthz" "$BIN/modelbus" inference run
  MODELBUS_WEBHOOK_SECRET="$webhook_secret" start_service delivery \
    "http://127.0.0.1:$DELIVERY_PORT/readyz" "$BIN/modelbus" delivery run
  MODELBUS_REGISTRY_API_KEY="$(service_key feedback)" start_service feedback \
    "http://127.0.0.1:$FEEDBACK_PORT/readyz" "$BIN/modelbus" feedback run
  MODELBUS_REGISTRY_API_KEY="$(service_key drift)" MODELBUS_INSTANCE_ID=drift-local \
    start_service drift "http://127.0.0.1:$DRIFT_PORT/readyz" "$BIN/modelbus" drift run
  log "stack is up: Kafka $MODELBUS_KAFKA_BOOTSTRAP, registry http://127.0.0.1:$REGISTRY_PORT/docs,"
  log "  gateway http://127.0.0.1:$GATEWAY_PORT/docs; keys and webhook secret in $RUN_DIR"
}

down() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_service "${SERVICES[i]}"; done
  kafka stop
}

status() {
  local healthy=0
  kafka status || healthy=1
  local service
  for service in "${SERVICES[@]}"; do
    if running "$service"; then
      log "$service: running (pid $(pid_of "$service"), log $RUN_DIR/$service.log)"
    else
      log "$service: not running"
      healthy=1
    fi
  done
  return "$healthy"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  -h | --help | help | "") usage ;;
  *) usage >&2; exit 2 ;;
esac
