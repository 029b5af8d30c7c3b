#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bindings.sh BUILD_DIR [RUNS] [BYTES]: the client SDKs against the C++ client, same run, same
# enclave. The enclave side is enclavia-local-ingress (NSM simulator) in front of the bulk server
# (bench/bulk.cc), behind enclavia-relay; every client dials the same ws:// URL with the same
# trust file (parsed once per client) and, per run, times with its own clock:
#   handshake   connect until attested (WebSocket upgrade, Noise XX, attestation checks);
#   request     a small request on a new stream: 9 bytes up, 1 KiB back;
#   download    BYTES (default 1 MiB) from the enclave on a new stream;
#   upload      BYTES to the enclave, until it acknowledged the count.
# Clients: C++ (bench/bindings_client.cc over the C ABI, compiled here against
# libenclavia-client.so), Python (bench/bindings_client.py, bindings/python) and Chromium
# (examples/browser/bench.html driven by tests/browser/bench.mjs, timed in the page with
# performance.now()). Run 0 of each is a warm-up. Prints medians of RUNS (default 20) and the
# ratios to C++; goals (issue 9): handshake ≤ 2×, 1 MiB transfer ≤ 1.2×. For scale, the same
# page also times Chromium's own WebSocket with no Enclavia at all (bench/ws_floor.mjs, a plain
# RFC 6455 server in Node): the floor any browser client pays.
# Needs: the build (enclavia-local-ingress, enclavia-relay, enclavia_bulk, libenclavia-client.so),
# bindings/js/dist, tests/browser/node_modules (npm ci), /usr/bin/chromium, bindings/python.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
runs=${2:-20}
bytes=${3:-1048576}
bin=$build/bin
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$root/tests/tools/processes.sh"
py=/usr/bin/python3

# The enclave side: bulk server ← ingress (simulated attestation of PCR0) ← relay.
bulk_port=$(free_port)
"$bin/enclavia_bulk" server "$bulk_port" >"$work/bulk.out" & pids+=($!)
wait_line "$work/bulk.out" listening >/dev/null
pcr0=$(printf 'bindings bench' | sha384sum | cut -d' ' -f1)
"$bin/enclavia-local-ingress" --listen "unix:$work/enclave.sock" --port "$bulk_port" \
  --simulator-state "$work/sim" --pcr "0=$pcr0" >"$work/ingress.log" 2>&1 & pids+=($!)
wait_line "$work/ingress.log" 'listening on' >/dev/null
"$bin/enclavia-relay" --listen tcp:127.0.0.1:0 --enclave "unix:$work/enclave.sock" >"$work/relay.log" 2>&1 & pids+=($!)
url="ws://127.0.0.1:$(wait_line "$work/relay.log" 'listening on tcp:' | listening_port)/"
printf 'roots = ["%s"]\n[[accept]]\nPCR0 = "%s"\n' "$work/sim/root.pem" "$pcr0" >"$work/trust.toml"

echo "== $runs runs per client (+1 warm-up), $bytes bytes each way, against $url =="
# C++: the C ABI, as every binding sees it.
c++ -O2 -std=c++20 -I"$root/src/client/include" "$here/bindings_client.cc" -o "$work/bindings_client" \
  -L"$build/lib" -lenclavia-client -Wl,-rpath,"$build/lib"
"$work/bindings_client" "$url" "$work/trust.toml" "$bulk_port" "$runs" "$bytes" >"$work/cpp"
echo "C++ done"

# Python: bindings/python from the source tree (or an installed `enclavia`).
if PYTHONPATH="$root/bindings/python${PYTHONPATH:+:$PYTHONPATH}" "$py" "$here/bindings_client.py" \
  "$url" "$work/trust.toml" "$bulk_port" "$runs" "$bytes" >"$work/python" 2>"$work/python.err"; then
  echo "Python done"
else
  echo "Python failed: $(tail -1 "$work/python.err")"; : >"$work/python"
fi

# Chromium: the page, served by examples/browser/server.mjs.
node "$root/examples/browser/server.mjs" --url "$url" --trust "$work/trust.toml" \
  >"$work/server.out" 2>&1 & pids+=($!)
server=$(wait_line "$work/server.out" 'listening on http' | sed -E 's/.*listening on (http[^ ]*).*/\1/')
node "$here/ws_floor.mjs" >"$work/floor.out" 2>&1 & pids+=($!)
floor="ws://127.0.0.1:$(wait_line "$work/floor.out" 'listening on' | awk '{print $NF}')/"
if (cd "$root/tests/browser" && node bench.mjs "$server" "$bulk_port" "$runs" "$bytes" "$floor") \
  >"$work/chromium.all" 2>"$work/chromium.err"; then
  echo "Chromium done ($(/usr/bin/chromium --version 2>/dev/null | head -1))"
else
  echo "Chromium failed:"; grep -v "^ *at \|^$\|^Node.js" "$work/chromium.err" | tail -5
fi
sed -n 's/^sdk //p' "$work/chromium.all" >"$work/chromium" 2>/dev/null || : >"$work/chromium"
sed -n 's/^floor //p' "$work/chromium.all" >"$work/floor" 2>/dev/null || : >"$work/floor"

"$py" - "$work" "$bytes" "$runs" <<'EOF'
import statistics, sys
work, size, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    rows = [list(map(float, line.split())) for line in open(f"{work}/{name}") if line.strip()]
    return [statistics.median(col) for col in zip(*rows)] if rows else None
cpp, python, chromium, floor = load("cpp"), load("python"), load("chromium"), load("floor")
mib = size / (1 << 20)
labels = ["handshake (connect until attested)", "small request (1 KiB answer)",
          f"download {mib:g} MiB", f"upload {mib:g} MiB"]
goals = ["≤ 2×", "", "≤ 1.2×", "≤ 1.2×"]
def cell(v, i):
    return "n/a" if v is None else f"{v[i]:.2f}"
def ratio(v, i):
    if v is None:
        return "n/a"
    r = v[i] / cpp[i]
    limit = {0: 2.0, 2: 1.2, 3: 1.2}.get(i)
    mark = "" if limit is None else (" ✔" if r <= limit else " ✘")
    return f"**{r:.2f}×**{mark}"
print()
print(f"medians of {runs} runs, milliseconds; ratio = SDK / C++ (lower is better)")
print()
print("| measurement | C++ (C ABI) | Python | ratio | Chromium (wasm) | ratio | goal | Chromium, plain WebSocket (floor) | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for i, label in enumerate(labels):
    print(f"| {label} | {cell(cpp, i)} | {cell(python, i)} | {ratio(python, i)} | "
          f"{cell(chromium, i)} | {ratio(chromium, i)} | {goals[i]} | {cell(floor, i)} | "
          f"{ratio(floor, i).replace(' ✔', '').replace(' ✘', '')} |")
if chromium is not None:
    print(f"\nChromium 1 MiB download: {mib / (chromium[2] / 1000):.0f} MiB/s; C++: {mib / (cpp[2] / 1000):.0f} MiB/s")
EOF
