#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine. Safe to run again and again.
#
# - RabbitMQ from Debian, only when `rabbitmq-server` is missing, with the plugins the suite uses
#   (streams, management) enabled offline, so that the node ci/broker.sh starts has them at once;
# - the project itself, editable, with its test, bench and otel extras (the tracing tests need otel);
# - the compiled hot paths (src_cy/*.pyx), built in place and checked to import;
# - the linters (ruff, mypy).
#
# The editable install is redone on every run on purpose: CI works in a fresh clone in another
# folder, and the install must point at *this* checkout, not at the last one that ran it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

log() { printf '[setup] %s\n' "$*"; }

# --- RabbitMQ --------------------------------------------------------------------------------
if command -v rabbitmq-server >/dev/null 2>&1; then
    log "rabbitmq-server present: $(command -v rabbitmq-server)"
else
    log "rabbitmq-server missing: installing it from Debian"
    # Without an init system the package's own service start can fail the install: keep dpkg
    # from starting it (ci/broker.sh starts it) unless a policy is already in place.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends rabbitmq-server
    # Offline: writes the enabled-plugins file only (no node runs yet). ci/broker.sh enables them
    # online as well, for a node that was already running.
    rabbitmq-plugins enable --offline rabbitmq_stream rabbitmq_management
fi

# --- Python packages -------------------------------------------------------------------------
# Cython is a build requirement only (pip builds in an isolated env), but `setup.py build_ext
# --inplace` below runs in this interpreter, so it needs Cython here too.
log "pip: Cython, ruff, mypy, build, wheel"
"$PY" -m pip install -q "Cython>=3,<4" ruff mypy build wheel

log "pip: editable install of the project with [test,bench,otel,plot]"
"$PY" -m pip install -q -e ".[test,bench,otel,plot]"

# The editable install already compiles src_cy/*.pyx and copies the modules next to the sources;
# build_ext --inplace makes sure they are fresh after a .pyx changed (it is a no-op otherwise).
log "build_ext --inplace"
"$PY" setup.py -q build_ext --inplace

# Every .pyx must have produced an importable module (MMATE_REQUIRE_EXTENSIONS runs rely on it).
shopt -s nullglob
pyx_files=(src_cy/*.pyx)
if ((${#pyx_files[@]} == 0)); then
    log "no src_cy/*.pyx yet: nothing compiled"
fi
for pyx in "${pyx_files[@]}"; do
    mod="mmate_fast._cy.$(basename "$pyx" .pyx)"
    if ! "$PY" -c "import $mod" 2>/dev/null; then
        log "ERROR: $pyx was built but '$mod' does not import:"
        "$PY" -c "import $mod" || true
        exit 1
    fi
    log "compiled: $mod"
done
log "done"
