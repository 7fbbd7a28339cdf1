#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672 with the streams and management plugins
# enabled (the management HTTP API on 15672 is what `mmate dlq list` reads).
#
# A broker that already answers is left alone: never stopped, never restarted. One is started
# (`rabbitmq-server -detached`) only when nothing answers and no RabbitMQ node is starting up.
# Plugins are enabled on the node that answers, started or found, online (`rabbitmq-plugins enable`
# needs no restart). RABBITMQ_NODE_PORT overrides the port (as it does for rabbitmq-server itself);
# MMATE_STREAM_PORT / MMATE_MANAGEMENT_PORT the plugins' ports waited for (default 5552 / 15672);
# MMATE_BROKER_WAIT the number of seconds to wait for the broker (default 120).
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
HOST=127.0.0.1
PORT=${RABBITMQ_NODE_PORT:-5672}
STREAM_PORT=${MMATE_STREAM_PORT:-5552}
MANAGEMENT_PORT=${MMATE_MANAGEMENT_PORT:-15672}
WAIT=${MMATE_BROKER_WAIT:-120}

log() { printf '[broker] %s\n' "$*"; }

# True when something accepts TCP connections on $HOST:$1.
port_open() {
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Wait up to $2 seconds for port $1; false if it never answered.
wait_port() {
    local port=$1 limit=$2 waited=0
    until port_open "$port"; do
        if ((waited >= limit)); then
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

if port_open "$PORT"; then
    log "a broker already answers on $HOST:$PORT: leaving it alone"
else
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        log "ERROR: nothing answers on $HOST:$PORT and rabbitmq-server is not installed (run ci/setup.sh)"
        exit 1
    fi
    if [[ -z ${RABBITMQ_NODE_PORT:-} ]] && pgrep -f 'beam.*rabbit' >/dev/null 2>&1; then
        log "a RabbitMQ node is running but not answering yet: waiting for it, not starting another"
    else
        log "nothing answers on $HOST:$PORT: starting rabbitmq-server -detached"
        rabbitmq-server -detached
    fi
    if ! wait_port "$PORT" "$WAIT"; then
        log "ERROR: RabbitMQ did not answer on $HOST:$PORT within ${WAIT}s; see /var/log/rabbitmq/"
        exit 1
    fi
    log "broker answers on $HOST:$PORT"
fi

# The plugins, online (no restart; 'already enabled' is fine), in one call: each call of
# rabbitmq-plugins starts an Erlang VM (seconds). Then wait (up to 30 s each) for their ports.
if out=$(rabbitmq-plugins enable rabbitmq_stream rabbitmq_management 2>&1); then
    log "plugins enabled: rabbitmq_stream, rabbitmq_management"
    for port in "$STREAM_PORT" "$MANAGEMENT_PORT"; do
        if ! wait_port "$port" 30; then
            log "WARNING: plugins enabled but $HOST:$port does not answer yet"
        fi
    done
else
    log "WARNING: could not enable rabbitmq_stream, rabbitmq_management (the streams tests and"
    log "'mmate dlq list' and its tests will fail):"
    printf '%s\n' "$out" >&2
fi
