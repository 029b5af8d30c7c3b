#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# example_test BIN_DIR BUILD_DIR OUT_DIR [FIXTURES_DIR]: examples/browser in a real headless Chromium (Debian's
# /usr/bin/chromium under playwright-core) against examples/hello deployed on the local platform:
#   the right trust file → the page shows the verified PCR0 (= the trust file's) and hello's
#   answer; a wrong PCR0 → a visible refusal naming policy_violation; conformance.html runs every
#   vector of tests/conformance in the browser, each verdict equal to the vector's (C++'s).
# Screenshots go to OUT_DIR (browser-example*.png). Exits 77 (skip) without root and namespaces
# (the local provider), chromium, tests/browser/node_modules (`npm ci`) or bindings/js/dist.
set -uo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
build=$(cd "${2:?build dir}" && pwd)
out=${3:?output dir}
fixtures=${4:-}  # the shared fixtures (nitro/), for the vectors that name an AWS document
if [ -n "$fixtures" ] && [ -d "$fixtures/nitro" ]; then
  export ENCLAVIA_REQUIRE_FIXTURES=1  # present: every vector must run, as in the C++ runner
else
  fixtures=""
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }
if [ "$(id -u)" -ne 0 ] || ! unshare --mount --pid --net --fork true 2>/dev/null; then
  skip "the local provider needs root and Linux namespaces"
fi
[ -x "${ENCLAVIA_CHROMIUM:-/usr/bin/chromium}" ] || skip "no /usr/bin/chromium (apt-get install chromium)"
[ -d "$here/node_modules/playwright-core" ] || skip "no playwright-core (cd tests/browser && npm ci)"
[ -f "$root/bindings/js/dist/enclavia_core.mjs" ] || skip "bindings/js/dist not built"

mkdir -p "$out"
work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  "$bin/enclavia" down >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$root/tests/integration/testlib.sh"
# shellcheck source=/dev/null
source "$root/tests/tools/processes.sh"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

# ── examples/hello on the local platform ───────────────────────────────────────────────────────
expect 0 "up -d" -- "$bin/enclavia" up -d || exit 1
mkdir -p "$work/hello"
cp -r "$build/examples/hello/Enclaviafile" "$build/examples/hello/rootfs" "$work/hello/"
expect 0 "build hello" -- "$bin/enclavia" build "$work/hello" -o "$work/hello.eif" --no-progress || exit 1
expect 0 "deploy hello" -- "$bin/enclavia" deploy "$work/hello.eif" --name hello --json || exit 1
cp "$work/out" "$work/hello.json"
url=$(json "$work/hello.json" 'd["url"]')
pcr0=$(json "$work/hello.json" "d['pcrs']['0']")
expect 0 "trust hello" -- "$bin/enclavia" trust hello -o "$work/hello.toml" || exit 1
other=$(printf 'another image' | sha384sum | cut -d' ' -f1)
sed "s/^PCR0 = .*/PCR0 = \"$other\"/" "$work/hello.toml" >"$work/wrong.toml"
check "the wrong trust file differs only in PCR0" \
  [ "$(diff "$work/hello.toml" "$work/wrong.toml" | grep -c '^[<>]')" -eq 2 ]

# ── the page's server, then Chromium ───────────────────────────────────────────────────────────
node "$root/examples/browser/server.mjs" --url "$url" --trust "right=$work/hello.toml" \
  --trust "wrong=$work/wrong.toml" --app-port 8080 ${fixtures:+--fixtures "$fixtures"} >"$work/server.out" 2>&1 &
pids+=($!)
server=$(wait_line "$work/server.out" 'listening on http' | sed -E 's/.*listening on (http[^ ]*).*/\1/') || exit 1
check "server: the page" [ "$(curl -s -o /dev/null -w '%{http_code}' "${server}examples/browser/")" = 200 ]
check "server: wasm as application/wasm" bash -c "curl -sI '${server}bindings/js/dist/enclavia_core.wasm' | grep -qi 'content-type: application/wasm'"
check "server: nothing outside its folders" [ "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "${server}examples/browser/../../CMakeLists.txt")" = 404 ]
check "server: inlines the root" bash -c "curl -s '${server}config.json' | grep -q 'BEGIN CERTIFICATE'"

start=$(date +%s.%N)
(cd "$here" && node example_test.mjs "$server" "$pcr0" "hello from the enclave: hi" "$out")
check "chromium: the page, a refusal and the conformance vectors" [ $? -eq 0 ]
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "chromium part took %.1f s\n", e - s}'
finish
