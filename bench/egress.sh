#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/egress.sh BUILD_DIR [REPS] [MIB]: egress through the enclave's emulated NIC against a
# direct connection from the host, in the same run, alternating (docs/performance.md).
#   - throughput: one TCP download of MIB MiB from an HTTP server on 203.0.113.7, by the probe
#     app inside an enclave with an [egress] policy (app → tun0 → lwIP → vsock → host dialer →
#     server) and by the same probe binary run directly on the host (the baseline);
#   - connect latency: the median of 50 connects, both ways;
#   - first validated answer: getaddrinfo of a name the enclave never resolved (its zone's keys
#     cold on the first, cached on the others), knotd on loopback, DNSSEC required;
#   - firewall decision: bench/egress_bench.cc (Google Benchmark).
# Medians of REPS; ratios are what to read. Runs in a private network namespace with the test
# internet of tests/tools/egress-net.sh. Needs root, /dev/net/tun and knot; says why and exits 0
# otherwise.
set -uo pipefail
build=$(cd "${1:-build}" && pwd)
reps=${2:-5}
mib=${3:-256}
bin="$build/bin"
root=$(cd "$(dirname "$0")/.." && pwd)
why=""
[ "$(id -u)" -eq 0 ] || why="needs root"
[ -z "$why" ] && [ ! -c /dev/net/tun ] && why="needs /dev/net/tun"
for tool in knotd keymgr kdig ip; do
  [ -z "$why" ] && ! command -v "$tool" >/dev/null && why="needs $tool"
done
if [ -n "$why" ]; then
  echo "bench/egress.sh: $why; skipping"
  exit 0
fi
if [ -z "${ENCLAVIA_BENCH_NETNS:-}" ]; then
  exec env ENCLAVIA_BENCH_NETNS=1 unshare --net -- "$0" "$build" "$reps" "$mib"
fi
work=$(mktemp -d)
export ENCLAVIA_HOME="$work/home"
direct_pid=""
# shellcheck source=/dev/null
source "$root/tests/tools/egress-net.sh"
# shellcheck source=/dev/null
source "$root/tests/tools/processes.sh"
cleanup() {
  [ -n "$direct_pid" ] && kill "$direct_pid" 2>/dev/null
  "$bin/enclavia" down >/dev/null 2>&1
  egress_net_down
  rm -rf "$work"
}
trap cleanup EXIT
py=/usr/bin/python3
[ -x "$py" ] || py=python3

egress_net_up "$work/net" || exit 1
"$bin/enclavia" up -d >/dev/null || exit 1
mkdir -p "$work/probe"
cp -r "$build/tests/platform/probe/rootfs" "$work/probe/"
cp "$work/net/anchor.key" "$work/probe/"
cat >"$work/probe/Enclaviafile" <<'TOML'
[image]
name = "egress-bench"
version = "1"

[app]
rootfs = "rootfs"
cmd = ["/bin/probe", "--port", "8081"]
port = 8081

[egress]
enabled = true
resolvers = ["192.0.2.53"]
dnssec = "require"
trust_anchor = "anchor.key"
allow = ["203.0.113.7:8080", "*.bench.enclavia.test:8080"]
TOML
"$bin/enclavia" build "$work/probe" -o "$work/probe.eif" --no-progress >/dev/null || exit 1
"$bin/enclavia" deploy "$work/probe.eif" --name bench --debug --json >"$work/deploy.json" || { "$bin/enclavia" logs bench; exit 1; }
"$bin/enclavia" trust bench -o "$work/bench.toml" >/dev/null || exit 1
url=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['url'])" "$work/deploy.json")
direct_port=$(free_port)
"$build/tests/platform/probe/rootfs/bin/probe" --port "$direct_port" >/dev/null 2>&1 &
direct_pid=$!

# enclave PATH / direct PATH: one request to the probe inside the enclave, or to its twin on the host.
enclave() {
  printf 'GET %s HTTP/1.1\r\nHost: probe\r\n\r\n' "$1" |
    timeout 120 "$bin/enclavia" connect "$url" --trust "$work/bench.toml" --port 8081 2>/dev/null |
    tr -d '\r' | sed '1,/^$/d'
}
direct() { curl -s --max-time 120 "http://127.0.0.1:$direct_port$1"; }
number() { sed -n "s/^ok $1/\\1/p"; }  # number REGEX-WITH-ONE-GROUP

bytes=$((mib << 20))
enclave_ms=(); direct_ms=(); enclave_us=(); direct_us=()
for i in $(seq 1 "$reps"); do
  e=$(enclave "/download?ip=203.0.113.7&port=8080&bytes=$bytes")
  d=$(direct "/download?ip=203.0.113.7&port=8080&bytes=$bytes")
  grep -q "^ok $((bytes + 38)) bytes\|^ok [0-9]* bytes" <<<"$e" || { echo "bench/egress.sh: enclave download failed: $e" >&2; exit 1; }
  enclave_ms+=("$(sed -n 's/^ok [0-9]* bytes in \([0-9]*\) ms/\1/p' <<<"$e")")
  direct_ms+=("$(sed -n 's/^ok [0-9]* bytes in \([0-9]*\) ms/\1/p' <<<"$d")")
  enclave_us+=("$(enclave '/connect-time?ip=203.0.113.7&port=8080&n=50' | sed -n 's/^ok median \([0-9]*\) us/\1/p')")
  direct_us+=("$(direct '/connect-time?ip=203.0.113.7&port=8080&n=50' | sed -n 's/^ok median \([0-9]*\) us/\1/p')")
done
resolve_us=()
for i in $(seq 0 "$reps"); do
  r=$(enclave "/resolve-time?name=r$i-$RANDOM.bench.enclavia.test")
  resolve_us+=("$(sed -n 's/^ok \([0-9]*\) us/\1/p' <<<"$r")")
done

"$py" - "$mib" "${enclave_ms[*]}" "${direct_ms[*]}" "${enclave_us[*]}" "${direct_us[*]}" "${resolve_us[*]}" <<'PY'
import statistics, sys
mib = int(sys.argv[1])
em, dm, eu, du, ru = ([int(x) for x in a.split()] for a in sys.argv[2:7])
med = statistics.median
e_tp = mib / (med(em) / 1000)
d_tp = mib / (med(dm) / 1000)
print(f"egress throughput ({mib} MiB download, median of {len(em)}):")
print(f"  through the enclave's NIC  {e_tp:8.0f} MiB/s   ({med(em)} ms)")
print(f"  direct from the host       {d_tp:8.0f} MiB/s   ({med(dm)} ms)")
print(f"  ratio                      {e_tp / d_tp:8.2f}     (goal >= 0.5)")
print(f"connect latency (median of 50 connects, median over {len(eu)} runs):")
print(f"  through the enclave's NIC  {med(eu):8.0f} us   (includes the host's own connect)")
print(f"  direct from the host       {med(du):8.0f} us")
print(f"  ratio                      {med(eu) / max(med(du), 1):8.1f}")
print("first validated answer (getaddrinfo in the enclave, knotd on loopback, dnssec require):")
print(f"  cold (zone keys fetched)   {ru[0] / 1000:8.1f} ms   (goal <= 50 ms)")
print(f"  new name, keys cached      {med(ru[1:]) / 1000:8.1f} ms   (median of {len(ru) - 1})")
PY

if [ -x "$bin/enclavia_egress_bench" ]; then
  echo "firewall decision (bench/egress_bench.cc, median of 5):"
  "$bin/enclavia_egress_bench" --benchmark_repetitions=5 --benchmark_min_time=0.2 \
    --benchmark_report_aggregates_only=true 2>/dev/null | awk '/_median/ {printf "  %-60s %s %s\n", $1, $4, $5}'
fi
