#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# egress_test BIN_DIR BUILD_DIR TOOLS_DIR: egress end to end, with real servers (issue 7).
# In a private network namespace (the machine's network is never touched) the test builds a small
# internet (tests/tools/egress-net.sh): knotd serving a zone it signed and an unsigned one, a
# hostile DNS path that rewrites one name's answers, HTTP servers on documentation addresses.
# It deploys the probe with an [egress] policy and checks, from inside the enclave:
#   an allowed name:port works, v4 and v6; the same name on another port, an unlisted IP, UDP and
#   vsock are refused at once; CIDR, wildcard and IPv6 rules; a name not allowed is REFUSED and
#   never reaches the upstream; a rewritten answer is bogus and refused; an unsigned answer under
#   dnssec = "require" is refused; after the TTL the IP is refused until resolved again; every
#   decision is logged; an image without [egress] has no interface and reaches nothing.
# Needs root, Linux namespaces, /dev/net/tun and knot; exits 77 (skip) otherwise.
set -uo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
build=$(cd "${2:?build dir}" && pwd)
tools=$(cd "${3:?tools dir}" && pwd)
if [ "$(id -u)" -ne 0 ] || ! unshare --mount --pid --net --fork true 2>/dev/null; then
  echo "egress_test: needs root and Linux namespaces; skipping"
  exit 77
fi
for tool in knotd keymgr kdig ip; do
  if ! command -v "$tool" >/dev/null; then
    echo "egress_test: $tool is missing (scripts/install-deps installs it); skipping"
    exit 77
  fi
done
if [ ! -c /dev/net/tun ]; then
  echo "egress_test: no /dev/net/tun on this machine; skipping"
  exit 77
fi
# Everything below runs in a network namespace of its own.
if [ -z "${ENCLAVIA_EGRESS_TEST_NETNS:-}" ]; then
  exec env ENCLAVIA_EGRESS_TEST_NETNS=1 unshare --net -- "$0" "$@"
fi

work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
proxy_pids=()
cleanup() {
  for p in "${proxy_pids[@]}"; do kill "$p" 2>/dev/null; done
  "$bin/enclavia" down >/dev/null 2>&1
  pkill -9 -f "enclavia-sandbox --dir $ENCLAVIA_HOME" 2>/dev/null
  egress_net_down
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"
# shellcheck source=/dev/null
source "$tools/processes.sh"
# shellcheck source=/dev/null
source "$tools/egress-net.sh"
enclavia() { "$bin/enclavia" "$@"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

# via NAME PATH: one HTTP GET to the probe (port 8081) through an attested channel.
via() {
  local url
  url=$(json "$work/$1.json" 'd["url"]')
  printf 'GET %s HTTP/1.1\r\nHost: probe\r\n\r\n' "$2" |
    timeout 30 "$bin/enclavia" connect "$url" --trust "$work/$1.toml" --port 8081 2>>"$work/connect.err" |
    tr -d '\r' | sed '1,/^$/d'
}

egress_net_up "$work/net" || { echo "FAIL: the test network did not come up" >&2; exit 1; }
expect 0 "up -d" -- enclavia up -d

# ── the egress probe: the platform probe with an [egress] policy ─────────────────────────────
mkdir -p "$work/egress-probe"
cp -r "$build/tests/platform/probe/rootfs" "$work/egress-probe/"
cp "$work/net/anchor.key" "$work/egress-probe/anchor.key"
write_enclaviafile() {  # write_enclaviafile DIR NAME DNSSEC
  cat >"$1/Enclaviafile" <<TOML
[image]
name = "$2"
version = "1"

[app]
rootfs = "rootfs"
cmd = ["/bin/probe", "--port", "8081"]
workdir = "/"
port = 8081

[egress]
enabled = true
resolvers = ["192.0.2.53"]
dnssec = "$3"
trust_anchor = "anchor.key"
allow = [
  "api.enclavia.test:8080",
  "v6.enclavia.test:8080",
  "short.enclavia.test:8080",
  "rewritten.enclavia.test:8080",
  "www.plain.test:8080",
  "198.51.100.0/24:443",
  "*.wild.enclavia.test:443-444",
  "[2001:db8::1]:443",
]

[kernel]
cmdline = "console=ttyS0"
TOML
}
write_enclaviafile "$work/egress-probe" egress-probe require
expect 0 "build the egress probe" -- enclavia build "$work/egress-probe" -o "$work/egress.eif" --no-progress
expect 0 "deploy it (debug: its decisions reach logs)" -- \
  enclavia deploy "$work/egress.eif" --name egress --debug --json
cp "$work/out" "$work/egress.json"
expect 0 "trust it" -- enclavia trust egress -o "$work/egress.toml"
check "the probe answers" grep -q '^probe boot=' <<<"$(via egress /)"

# ── allowed ────────────────────────────────────────────────────────────────────────────────────
out=$(via egress '/fetch?host=api.enclavia.test&port=8080')
check "allowed name:port works ($out)" grep -q '^ok 203.0.113.7 hello from 203.0.113.7:8080' <<<"$out"
out=$(via egress '/fetch?host=v6.enclavia.test&port=8080')
check "allowed name:port over IPv6 ($out)" grep -q '^ok 2001:db8::7 hello from \[2001:db8::7\]:8080' <<<"$out"
out=$(via egress '/fetch?host=198.51.100.20&port=443')
check "CIDR rule ($out)" grep -q '^ok 198.51.100.20 hello' <<<"$out"
out=$(via egress '/fetch?host=2001:db8::1&port=443')
check "IPv6 address rule ($out)" grep -q '^ok 2001:db8::1 hello' <<<"$out"
out=$(via egress '/fetch?host=a.wild.enclavia.test&port=444')
check "wildcard rule, port range ($out)" grep -q '^ok 192.0.2.30 hello from 192.0.2.30:444' <<<"$out"
out=$(via egress '/fetch?host=b.c.wild.enclavia.test&port=444')
check "wildcard rule, two labels deep ($out)" grep -q '^ok 192.0.2.30 ' <<<"$out"

# ── refused ────────────────────────────────────────────────────────────────────────────────────
out=$(via egress '/fetch?host=api.enclavia.test&port=9090')
check "the same name on another port is reset at once ($out)" grep -q '^error: 203.0.113.7: Connection refused' <<<"$out"
out=$(via egress '/fetch?host=203.0.113.50&port=80')
check "an IP not listed is reset at once ($out)" grep -q '^error: 203.0.113.50: Connection refused' <<<"$out"
out=$(via egress '/fetch?host=198.51.100.20&port=8443')
check "CIDR rule, other port refused ($out)" grep -q 'Connection refused' <<<"$out"
out=$(via egress '/fetch?host=192.0.2.30&port=8080')
check "a wildcard's IP on another port refused ($out)" grep -q 'Connection refused' <<<"$out"
out=$(via egress '/resolve?name=wild.enclavia.test')
check "a wildcard does not allow its own apex ($out)" grep -q '^error' <<<"$out"
out=$(via egress '/resolve?name=secret.enclavia.test')
check "a name not allowed is not resolved ($out)" grep -q '^error' <<<"$out"
check "the refused name never reached the upstream" bash -c "! grep -q '^secret.enclavia.test' '$work/net/dns-queries.log'"
check "the allowed name did" grep -q '^api.enclavia.test ' "$work/net/dns-queries.log"
out=$(via egress '/fetch?host=rewritten.enclavia.test&port=8080')
check "an answer the host rewrote is refused ($out)" grep -q '^error: resolve' <<<"$out"
check "the rewritten query did go upstream" grep -q '^rewritten.enclavia.test ' "$work/net/dns-queries.log"
check "nothing reached the address the host put in" bash -c "! grep -q '203.0.113.66' '$work/net/servers.log'"
out=$(via egress '/fetch?host=www.plain.test&port=8080')
check "an unsigned answer with dnssec = require is refused ($out)" grep -q '^error: resolve' <<<"$out"
out=$(via egress '/fetch?host=203.0.113.9&port=8080')
check "and its IP stays refused ($out)" grep -q 'Connection refused' <<<"$out"
out=$(via egress '/udp?ip=198.51.100.20&port=5353&text=leak')
check "UDP out is dropped (sent: $out)" bash -c "sleep 1; ! grep -q '^udp .*leak' '$work/net/servers.log'"
out=$(via egress '/vsock')
check "the app cannot open vsock to the host's dialer ($out)" grep -q '^error: Permission denied' <<<"$out"

# ── TTL: a learned IP expires with its answer ─────────────────────────────────────────────────
out=$(via egress '/fetch?host=short.enclavia.test&port=8080')
check "a 2 s name works while fresh ($out)" grep -q '^ok 203.0.113.8 ' <<<"$out"
sleep 3
out=$(via egress '/fetch?host=203.0.113.8&port=8080')
check "after its TTL the IP is refused ($out)" grep -q 'Connection refused' <<<"$out"
out=$(via egress '/fetch?host=short.enclavia.test&port=8080')
check "resolved again, it works again ($out)" grep -q '^ok 203.0.113.8 ' <<<"$out"

# ── every decision is logged (debug console) ──────────────────────────────────────────────────
sleep 1
enclavia logs egress >"$work/egress.log" 2>&1
check "log: an allow names its rule" grep -q 'allow.*203.0.113.7:8080.*api.enclavia.test:8080' "$work/egress.log"
check "log: a deny names the destination" grep -q 'deny.*203.0.113.50:80' "$work/egress.log"
check "log: the refused name" grep -q 'secret.enclavia.test' "$work/egress.log"
check "log: the bogus answer" grep -qi 'bogus' "$work/egress.log"

# ── a production (non-debug) enclave: the same policy, the daemons' output discarded ─────────
expect 0 "deploy the egress probe in production mode" -- \
  enclavia deploy "$work/egress.eif" --name egress-prod --json
cp "$work/out" "$work/egress-prod.json"
expect 0 "trust it" -- enclavia trust egress-prod -o "$work/egress-prod.toml"
out=$(via egress-prod '/fetch?host=api.enclavia.test&port=8080')
check "production: allowed name:port works ($out)" grep -q '^ok 203.0.113.7 hello' <<<"$out"
out=$(via egress-prod '/fetch?host=api.enclavia.test&port=9090')
check "production: another port is refused ($out)" grep -q 'Connection refused' <<<"$out"
expect 1 "production: its logs stay inside" -- enclavia logs egress-prod

# ── dnssec = "off": loud, and unsigned names resolve ──────────────────────────────────────────
mkdir -p "$work/egress-off"
cp -r "$work/egress-probe/rootfs" "$work/egress-off/"
write_enclaviafile "$work/egress-off" egress-off off
expect 0 "build a dnssec-off probe" -- enclavia build "$work/egress-off" -o "$work/off.eif" --no-progress
expect 0 "describe says dnssec is off" -- enclavia describe "$work/off.eif"
check "describe warns about dnssec off" grep -qi 'dnssec.*off' "$work/out"
expect 0 "deploy it" -- enclavia deploy "$work/off.eif" --name egress-off --debug --json
cp "$work/out" "$work/egress-off.json"
expect 0 "trust it" -- enclavia trust egress-off -o "$work/egress-off.toml"
out=$(via egress-off '/fetch?host=www.plain.test&port=8080')
check "dnssec off: an unsigned name resolves and connects ($out)" grep -q '^ok 203.0.113.9 ' <<<"$out"
enclavia logs egress-off >"$work/egress-off.log" 2>&1
check "dnssec off is stated in the log" grep -qi 'dnssec.*off' "$work/egress-off.log"

# ── no [egress]: no interface, nothing reachable ──────────────────────────────────────────────
mkdir -p "$work/plain"
cp -r "$build/tests/platform/probe/Enclaviafile" "$build/tests/platform/probe/rootfs" "$work/plain/"
expect 0 "build the plain probe" -- enclavia build "$work/plain" -o "$work/plain.eif" --no-progress
expect 0 "deploy it" -- enclavia deploy "$work/plain.eif" --name plain --json
cp "$work/out" "$work/plain.json"
expect 0 "trust it" -- enclavia trust plain -o "$work/plain.toml"
check "egress off: only lo" [ "$(via plain /net)" = "lo" ]
out=$(via plain '/fetch?host=203.0.113.7&port=8080')
check "egress off: an allowed-elsewhere IP is unreachable ($out)" grep -q '^error' <<<"$out"
out=$(via plain '/resolve?name=api.enclavia.test')
check "egress off: no resolver ($out)" grep -q '^error' <<<"$out"

# The host saw destinations, never a name it was not asked to dial.
agent_api="http://$(sed 's/^tcp://' "$ENCLAVIA_HOME/host/address")"
curl -s --max-time 5 "$agent_api/metrics" >"$work/metrics.txt"
check "metrics count egress connections" grep -Eq '^enclavia_egress_connections_total\{enclave="egress".*\} [1-9]' "$work/metrics.txt"

expect 0 "rm" -- enclavia rm egress
finish
