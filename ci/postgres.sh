#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 and has the `test` database the StageFlow
# store tests use (tests/integration/test_flow_store_postgres.py; trust auth as user postgres).
#
# A server that already answers is left alone: never stopped, never restarted. One is started
# (`pg_ctlcluster ... main start`, the Debian cluster) only when nothing answers; installed from
# Debian first when there is no PostgreSQL at all. MMATE_POSTGRES_PORT overrides the port;
# MMATE_POSTGRES_WAIT the number of seconds to wait for the server (default 60).
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
HOST=127.0.0.1
PORT=${MMATE_POSTGRES_PORT:-5432}
WAIT=${MMATE_POSTGRES_WAIT:-60}

log() { printf '[postgres] %s\n' "$*"; }

# True when the server on $HOST:$PORT accepts connections.
ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$HOST" -p "$PORT" -t 3
    else
        timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null
    fi
}

# psql as the postgres superuser: over TCP (trust auth), else the local socket as the OS user.
as_postgres() {
    if psql -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        psql -h "$HOST" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"
    else
        su postgres -c "psql -p $PORT -d postgres -v ON_ERROR_STOP=1 -Atq $(printf '%q ' "$@")"
    fi
}

if ready; then
    log "a server already answers on $HOST:$PORT: leaving it alone"
else
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        log "no PostgreSQL installed: installing it from Debian"
        export DEBIAN_FRONTEND=noninteractive
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then  # no init system: dpkg must not start it
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends postgresql postgresql-client
    fi
    version=$(ls /etc/postgresql | sort -V | tail -1)
    if [[ -z $version ]]; then
        log "ERROR: PostgreSQL is installed but has no cluster under /etc/postgresql"
        exit 1
    fi
    # trust auth on loopback, as the tests connect (only when the cluster says otherwise)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    if [[ -f $hba ]] && ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
        log "pg_hba.conf: trust for 127.0.0.1/32 and ::1/128"
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    log "nothing answers on $HOST:$PORT: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    waited=0
    until ready; do
        if ((waited >= WAIT)); then
            log "ERROR: PostgreSQL did not answer on $HOST:$PORT within ${WAIT}s; see /var/log/postgresql/"
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "server answers on $HOST:$PORT"
fi

if [[ $(as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'test'") == 1 ]]; then
    log "database test exists"
else
    log "creating database test"
    as_postgres -c "CREATE DATABASE test"
fi
