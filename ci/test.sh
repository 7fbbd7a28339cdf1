#!/usr/bin/env bash
# THE test command, on a developer machine and in CI alike:
#   setup (ci/setup.sh) -> broker (ci/broker.sh) -> postgres (ci/postgres.sh) -> ruff -> mypy
#   -> the wheel (ci/wheel.sh: built, installed in a fresh venv without Cython or a compiler, run)
#   -> pytest over the whole suite with the compiled extensions required
#   -> pytest again over the codec and transport tests with the pure-Python twins forced.
# Every check runs even when an earlier one failed; the exit code is non-zero when any failed.
# pytest's exit code 5 ("no tests collected") counts as a failure.
#
# The suite runs in asyncio debug mode (PYTHONASYNCIODEBUG=1; set it empty to turn it off) and fails
# any test during which a task/future exception was never retrieved (tests/conftest.py).
#
# Knobs: MMATE_SKIP_SETUP=1 skips ci/setup.sh (quick local reruns); MMATE_SKIP_BROKER=1 skips
# ci/broker.sh and lets the integration tests skip; MMATE_SKIP_POSTGRES=1 skips ci/postgres.sh and
# lets the PostgreSQL flow store tests skip; MMATE_SKIP_WHEEL=1 skips ci/wheel.sh; MMATE_TEST_TIMEOUT
# sets the per-test timeout in seconds (default 300); extra arguments are passed to both pytest runs
# (e.g. -x, -k EXPR).
set -euo pipefail

# Folders whose tests also run against the pure-Python twins (MMATE_NO_EXTENSIONS=1).
PURE_TEST_DIRS="tests/unit tests/behaviour"
# What ruff checks.
LINT_DIRS="mmate_fast tests benchmarks examples"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
TIMEOUT=${MMATE_TEST_TIMEOUT:-300}
export PYTHONDONTWRITEBYTECODE=1
# asyncio debug mode everywhere (tests/conftest.py passes it on to pytest-asyncio): slow callbacks are
# logged, tasks remember where they were created, and an exception nobody retrieved fails its test.
export PYTHONASYNCIODEBUG=${PYTHONASYNCIODEBUG-1}

results=()
failed=0
# The failed/erroring test ids of each pytest run, repeated in the summary (CI shows only the tail).
FAILED_IDS=$(mktemp)
trap 'rm -f "$FAILED_IDS"' EXIT

# Run pytest (the command after the label $1), its output shown as it comes and its "FAILED id" /
# "ERROR id" summary lines (-rfE) kept, labelled, for the final summary; the exit code is pytest's.
run_pytest() {
    local label=$1 log rc=0
    shift
    log=$(mktemp)
    "$@" 2>&1 | tee "$log" || rc=$?
    grep -E '^(FAILED|ERROR) ' "$log" | sed "s/^/    [$label] /" >>"$FAILED_IDS" || true
    rm -f "$log"
    return "$rc"
}

step() { printf '\n==> %s\n' "$*"; }

# Record the outcome of check $1 from exit code $2 (pytest's 5 is a failure too).
record() {
    local name=$1 rc=$2 why=""
    if ((rc == 0)); then
        results+=("ok    $name")
        return
    fi
    ((rc == 5)) && why=" (pytest: no tests collected)"
    results+=("FAIL  $name: exit $rc$why")
    failed=1
}

# Print only the paths of $@ that exist; warn about the others.
existing() {
    local p
    for p in "$@"; do
        if [[ -e $p ]]; then
            printf '%s\n' "$p"
        else
            printf 'warning: %s does not exist, left out\n' "$p" >&2
        fi
    done
}

if [[ ${MMATE_SKIP_SETUP:-0} != 1 ]]; then
    step "setup"
    bash ci/setup.sh
fi
if [[ ${MMATE_SKIP_BROKER:-0} != 1 ]]; then
    step "broker"
    bash ci/broker.sh
fi
if [[ ${MMATE_SKIP_POSTGRES:-0} != 1 ]]; then
    step "postgres"
    bash ci/postgres.sh
fi

pytest_args=(-p no:cacheprovider -rfE)
if "$PY" -c "import pytest_timeout" 2>/dev/null; then
    pytest_args+=("--timeout=$TIMEOUT")
else
    echo "warning: pytest-timeout is not installed: no per-test timeout" >&2
fi

# shellcheck disable=SC2086  # the folder lists are meant to split on spaces
mapfile -t lint_paths < <(existing $LINT_DIRS)
step "ruff check ${lint_paths[*]}"
rc=0; "$PY" -m ruff check "${lint_paths[@]}" || rc=$?
record "ruff" "$rc"

step "mypy mmate_fast"
rc=0; "$PY" -m mypy mmate_fast || rc=$?
record "mypy" "$rc"

# the wheel in a fresh venv without Cython or a compiler (ci/wheel.sh says what it checks)
if [[ ${MMATE_SKIP_WHEEL:-0} != 1 ]]; then
    step "wheel (ci/wheel.sh)"
    rc=0; PYTHON="$PY" bash ci/wheel.sh || rc=$?
    record "wheel" "$rc"
fi

step "pytest (compiled extensions required)"
rc=0; run_pytest compiled env MMATE_REQUIRE_EXTENSIONS=1 "$PY" -m pytest "${pytest_args[@]}" "$@" || rc=$?
record "pytest compiled" "$rc"

# shellcheck disable=SC2086
mapfile -t pure_paths < <(existing $PURE_TEST_DIRS)
step "pytest (pure-Python twins: MMATE_NO_EXTENSIONS=1) ${pure_paths[*]}"
if ((${#pure_paths[@]} == 0)); then
    echo "none of $PURE_TEST_DIRS exists"
    record "pytest pure-Python" 5
else
    rc=0; run_pytest pure-Python env MMATE_NO_EXTENSIONS=1 "$PY" -m pytest "${pytest_args[@]}" "$@" "${pure_paths[@]}" || rc=$?
    record "pytest pure-Python" "$rc"
fi

printf '\n==> summary\n'
printf '  %s\n' "${results[@]}"
if [[ -s $FAILED_IDS ]]; then
    echo "  failed tests:"
    cat "$FAILED_IDS"
fi
if ((failed)); then
    echo "ci/test.sh: FAILED"
    exit 1
fi
echo "ci/test.sh: all checks passed"
