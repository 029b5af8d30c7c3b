#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run_tests.sh BUILD_DIR SOURCE_DIR [FIXTURES_DIR]: the Python binding's ctest (bindings.python).
#   1. pip-installs bindings/python (a copy, so the source tree stays clean) into a venv in
#      BUILD_DIR/bindings/python/venv, offline, with the library from BUILD_DIR/lib;
#   2. starts examples/hello behind the enclave side (enclavia-local-ingress, NSM simulator
#      attesting hello's EIF PCRs) and the host's relay, as scripts/demo-channel does;
#   3. runs pytest (unit, conformance vectors, end to end) against the installed package.
set -uo pipefail
build=$(cd "${1:?build dir}" && pwd)
src=$(cd "${2:?source dir}" && pwd)
fixtures=${3:-$src/../shared/fixtures}
bin=$build/bin
hello=$build/examples/hello
venv=$build/bindings/python/venv
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$src/tests/tools/processes.sh"
py=/usr/bin/python3  # Debian's: its setuptools and pytest (PyPI is not needed)
$py -c 'import pytest, setuptools' 2>/dev/null || { echo "SKIP: python3-pytest/python3-setuptools missing"; exit 77; }

# 1. Install.
start=$(date +%s%N)
[ -x "$venv/bin/python" ] || $py -m venv --system-site-packages "$venv" || exit 1
cp -r "$src/bindings/python" "$work/pkg" && rm -rf "$work/pkg/build" "$work/pkg/"*.egg-info
ENCLAVIA_BUILD_DIR=$build "$venv/bin/pip" install -q --no-build-isolation --no-index \
  --force-reinstall --no-deps "$work/pkg" >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
echo "installed in $((($(date +%s%N) - start) / 1000000)) ms"

# 2. The enclave: hello, attested by its EIF's PCRs, behind the ingress and the relay. Built
# from a copy: `enclavia build` writes enclavia.lock beside the Enclaviafile, and the build tree's
# example must not keep a lock that a later runtime build no longer matches.
mkdir -p "$work/hello" && cp -r "$build/examples/hello/Enclaviafile" "$build/examples/hello/rootfs" "$work/hello/"
hello=$work/hello
"$bin/enclavia" build "$hello" -o "$work/hello.eif" --json >"$work/pcrs.json" 2>"$work/build.err" ||
  { cat "$work/build.err"; exit 1; }
pcr() { $py -c 'import json,sys; print(json.load(open(sys.argv[1]))["Measurements"]["PCR"+sys.argv[2]])' "$work/pcrs.json" "$1"; }
app_port=$(free_port)
GREETING=python "$hello/rootfs/bin/hello" --port "$app_port" >"$work/hello.log" 2>&1 & pids+=($!)
"$bin/enclavia-local-ingress" --listen "unix:$work/enclave.sock" --port "$app_port" \
  --eif "$work/hello.eif" --simulator-state "$work/sim" >"$work/ingress.log" 2>&1 & pids+=($!)
wait_line "$work/ingress.log" 'listening on' >/dev/null || exit 1
"$bin/enclavia-relay" --listen tcp:127.0.0.1:0 --enclave "unix:$work/enclave.sock" \
  >"$work/relay.log" 2>&1 & pids+=($!)
relay_port=$(wait_line "$work/relay.log" 'listening on tcp:' | listening_port) || exit 1
wait_line "$work/hello.log" 'listening on' >/dev/null || exit 1
cat >"$work/trust.toml" <<TOML
roots = ["sim/root.pem"]
max_age = "10m"
fresh = true
[[accept]]
PCR0 = "$(pcr 0)"
PCR1 = "$(pcr 1)"
PCR2 = "$(pcr 2)"
TOML

# 3. pytest, from a folder where the source package is not importable: tests use the install.
cd "$work" || exit 1
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
ENCLAVIA_TEST_URL="ws://127.0.0.1:$relay_port/" ENCLAVIA_TEST_TRUST="$work/trust.toml" \
  ENCLAVIA_TEST_PORT=$app_port ENCLAVIA_TEST_GREETING=python ENCLAVIA_REQUIRE_E2E=1 \
  ENCLAVIA_EXPECT_INSTALLED="$venv" ENCLAVIA_FIXTURES=$fixtures \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$src/bindings/python/tests"
