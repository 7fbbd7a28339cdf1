#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it into a fresh virtual environment with no Cython
# and no C compiler on PATH, and run it there.
#
#   1. python -m build --sdist --wheel --no-isolation: the sdist (checked to hold src_cy/*.pyx and
#      the .pyi stubs) and the wheel of this checkout with the compiled extensions (Cython from this
#      environment; ./build is reused, so only changed .pyx compile again);
#   2. python -m venv, then pip install the wheel (and its [testing] extra) with PATH reduced to the
#      venv's bin: no cc/gcc, no Cython; --only-binary :all: so that pip could not compile anything
#      even if it wanted to; dependencies as pip resolves them from the package index, kept in a
#      wheelhouse so that later runs install them offline in seconds;
#   3. in an empty folder (never this checkout): `mmate --version` must list every src_cy/*.pyx as a
#      compiled module, `mmate demo --quiet` runs the order pipeline on memory://, `mmate bench` says
#      the benchmarks belong to a checkout (exit 1), and pytest runs the README's example test
#      (tests/data/testing_plugin/orders_example.py) with the plugin from the wheel's pytest11 entry
#      point.
#
# Knobs: PYTHON (default python3); MMATE_WHEEL_DIR keeps the venv and the wheel there (default: a
# temporary folder, removed at the end); MMATE_WHEELHOUSE, where the dependencies' wheels are kept
# between runs (default ~/.cache/mmate-fast/wheelhouse; filled from the package index when a
# dependency is missing from it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
HOUSE=${MMATE_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmate-fast/wheelhouse}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

if [[ -n ${MMATE_WHEEL_DIR:-} ]]; then
    WORK=$MMATE_WHEEL_DIR
    rm -rf "$WORK/venv" "$WORK/dist" "$WORK/run"
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
log() { printf '[wheel] %s\n' "$*"; }
fail() { printf '[wheel] FAILED: %s\n' "$*" >&2; exit 1; }
SECONDS=0

log "build the sdist and the wheel (compiled extensions)"
"$PY" -m build --sdist --wheel --no-isolation --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || {
    tail -30 "$WORK/build.log" >&2
    fail "python -m build failed (needs build, wheel, setuptools and Cython here: ci/setup.sh)"
}
sdists=("$WORK"/dist/*.tar.gz)
((${#sdists[@]} == 1)) || fail "expected one sdist in $WORK/dist, found ${#sdists[@]}"
listing=$(tar tzf "${sdists[0]}")
for pyx in src_cy/*.pyx mmate_fast/_cy/*.pyi; do
    grep -q "/$pyx\$" <<<"$listing" || fail "the sdist lacks $pyx (MANIFEST.in)"
done
wheels=("$WORK"/dist/*.whl)
((${#wheels[@]} == 1)) || fail "expected one wheel in $WORK/dist, found ${#wheels[@]}"
WHEEL=${wheels[0]}
case $(basename "$WHEEL") in
    *-none-any.whl) fail "$(basename "$WHEEL") is a pure-Python wheel: the extensions were not built" ;;
esac
log "built $(basename "$WHEEL") (${SECONDS}s)"

log "fresh venv; install the wheel with PATH=<venv>/bin only (no compiler, no Cython)"
"$PY" -m venv --without-pip "$WORK/venv"  # pip runs from here (--python): no ensurepip, seconds faster
VENV=$WORK/venv
REALPY=$("$PY" -c 'import sys; print(sys.executable)')  # not a pyenv shim: it needs no PATH
run_isolated() { env -u PYTHONPATH PATH="$VENV/bin" "$@"; }
run_isolated sh -c 'command -v cc gcc cython' >/dev/null 2>&1 && fail "a compiler or cython is on the reduced PATH"
venv_pip() { run_isolated "$REALPY" -m pip --python "$VENV/bin/python" "$@"; }
target="mmate-fast[testing] @ file://$WHEEL"
# the dependencies' wheels are kept in a wheelhouse: after the first run the install needs no index
if ! venv_pip install -q --only-binary :all: --no-index --find-links "$HOUSE" "$target" 2>/dev/null; then
    log "dependencies into the wheelhouse $HOUSE (from the package index)"
    mkdir -p "$HOUSE"
    venv_pip download -q --only-binary :all: -d "$HOUSE" "$target" || fail "pip could not download the dependencies"
    rm -f "$HOUSE"/mmate_fast-*.whl
    venv_pip install -q --only-binary :all: --no-index --find-links "$HOUSE" "$target" \
        || fail "pip could not install the wheel without building anything"
fi
run_isolated "$VENV/bin/python" -c "import Cython" 2>/dev/null && fail "Cython is installed in the venv"
log "installed (${SECONDS}s)"

mkdir -p "$WORK/run"
cd "$WORK/run"  # not the checkout: mmate_fast must come from the venv

version=$(run_isolated "$VENV/bin/mmate" --version) || fail "mmate --version failed"
log "$version"
where=$(run_isolated "$VENV/bin/python" -c "import mmate_fast; print(mmate_fast.__file__)")
[[ $where == "$VENV"/* ]] || fail "mmate_fast was imported from $where, not from the venv"
for pyx in "$ROOT"/src_cy/*.pyx; do
    mod=$(basename "$pyx" .pyx)
    [[ $version =~ compiled\ extensions:\ ([a-z_, ]+) ]] || fail "mmate --version does not list the compiled extensions"
    [[ ", ${BASH_REMATCH[1]}, " == *", $mod, "* ]] || fail "the compiled module $mod is not in use: $version"
done

log "mmate demo --quiet (memory://)"
run_isolated "$VENV/bin/mmate" demo --quiet || fail "mmate demo failed"

log "mmate bench without a checkout says where the benchmarks are"
rc=0; err=$(run_isolated "$VENV/bin/mmate" bench publish 2>&1 >/dev/null) || rc=$?
((rc == 1)) && [[ $err == *"not of the installed package"* ]] || fail "mmate bench in the venv: exit $rc: $err"

log "pytest: the README example with the plugin from the wheel's entry point"
cp "$ROOT/tests/data/testing_plugin/orders_example.py" test_orders_example.py
printf '[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n' >pytest.ini
run_isolated "$VENV/bin/python" -m pytest -q -p no:cacheprovider -k "not rabbitmq" test_orders_example.py \
    || fail "the example test failed in the venv"

log "ok (${SECONDS}s)"
