# SPDX-License-Identifier: Apache-2.0
# egress-net.sh: the test network of the egress tests, demo and benchmark. Source it, then call
# egress_net_up DIR inside a private network namespace (`unshare --net`): it never touches the
# machine's own network. It builds:
#   - documentation addresses on lo (the "internet"): 203.0.113.0/24, 198.51.100.20, 192.0.2.30,
#     2001:db8::1 and ::7;
#   - knotd, a real authoritative server, on 192.0.2.54:53 with the zone enclavia.test signed by
#     knot itself (ECDSA P-256, its own keys) and the unsigned zone plain.test; the signed zone's
#     DS records become DIR/anchor.key, the trust anchor the test images bake in;
#   - the resolver address the images name, 192.0.2.53:53: a relay to knotd standing for the
#     host's path to DNS, which logs every query that reached it (DIR/dns-queries.log) and
#     rewrites the A records of rewritten.enclavia.test (a hostile host);
#   - HTTP servers on the addresses the tests dial, logging every connection (DIR/servers.log),
#     and a UDP sink (198.51.100.20:5353) logging every datagram.
# egress_net_down stops them. Needs root, ip (iproute2), knotd, keymgr and kdig (knot,
# knot-dnsutils).
EGRESS_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
egress_net_pids=()

egress_net_up() {
  local dir=$1
  mkdir -p "$dir/knot/zones" "$dir/knot/db" "$dir/knot/run"
  ip link set lo up || return 1
  local a
  for a in 203.0.113.7 203.0.113.8 203.0.113.9 203.0.113.50 203.0.113.66 198.51.100.20 \
           192.0.2.30 192.0.2.53 192.0.2.54; do
    ip addr add "$a/32" dev lo || return 1
  done
  ip -6 addr add 2001:db8::1/128 dev lo nodad || return 1
  ip -6 addr add 2001:db8::7/128 dev lo nodad || return 1

  cat >"$dir/knot/zones/enclavia.test.zone" <<'ZONE'
$ORIGIN enclavia.test.
$TTL 300
@         SOA   ns admin 1 3600 600 86400 300
@         NS    ns
ns        A     192.0.2.54
api       A     203.0.113.7
v6        AAAA  2001:db8::7
short 2   A     203.0.113.8
rewritten A     203.0.113.7
secret    A     203.0.113.7
wild      A     192.0.2.30
a.wild    A     192.0.2.30
b.c.wild  A     192.0.2.30
*.bench   A     203.0.113.7
ZONE
  cat >"$dir/knot/zones/plain.test.zone" <<'ZONE'
$ORIGIN plain.test.
$TTL 300
@         SOA   ns admin 1 3600 600 86400 300
@         NS    ns
ns        A     192.0.2.54
www       A     203.0.113.9
ZONE
  cat >"$dir/knot/knot.conf" <<CONF
server:
    rundir: "$dir/knot/run"
    listen: [ 192.0.2.54@53 ]
database:
    storage: "$dir/knot/db"
log:
  - target: "$dir/knot/knotd.log"
    any: info
policy:
  - id: test
    algorithm: ecdsap256sha256
    nsec3: off
template:
  - id: default
    storage: "$dir/knot/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: enclavia.test
    dnssec-signing: on
    dnssec-policy: test
  - domain: plain.test
CONF
  knotd -c "$dir/knot/knot.conf" >>"$dir/knot/knotd.log" 2>&1 &
  egress_net_pids+=($!)
  local i ds=""
  for i in $(seq 1 100); do
    if kdig @192.0.2.54 enclavia.test SOA +dnssec +short +timeout=1 +retry=0 2>/dev/null | grep -q SOA; then
      ds=$(keymgr -c "$dir/knot/knot.conf" enclavia.test ds 2>/dev/null | grep -E ' DS ' | head -n 1)
      [ -n "$ds" ] && break
    fi
    sleep 0.1
  done
  if [ -z "$ds" ]; then
    echo "egress-net: knotd did not serve a signed enclavia.test; its log:" >&2
    cat "$dir/knot/knotd.log" >&2
    return 1
  fi
  # keymgr prints "enclavia.test. DS <tag> 13 2 <hex>"; unbound reads zone-file text.
  printf '%s\n' "$ds" >"$dir/anchor.key"

  python3 "$EGRESS_TOOLS/dns_rewrite_proxy.py" 192.0.2.53 192.0.2.54 "$dir/dns-queries.log" \
    >"$dir/dns-proxy.out" 2>&1 &
  egress_net_pids+=($!)
  python3 "$EGRESS_TOOLS/egress_servers.py" "$dir/servers.log" \
    tcp:203.0.113.7:8080 tcp:203.0.113.7:9090 tcp:203.0.113.8:8080 tcp:203.0.113.9:8080 \
    tcp:203.0.113.66:8080 tcp:203.0.113.50:80 tcp:198.51.100.20:443 tcp:198.51.100.20:8443 \
    tcp:192.0.2.30:444 tcp:192.0.2.30:8080 "tcp:[2001:db8::1]:443" "tcp:[2001:db8::7]:8080" \
    udp:198.51.100.20:5353 >"$dir/servers.out" 2>&1 &
  egress_net_pids+=($!)
  for i in $(seq 1 100); do
    grep -q ready "$dir/dns-proxy.out" 2>/dev/null && grep -q ready "$dir/servers.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "egress-net: the test servers did not start: $(cat "$dir/dns-proxy.out" "$dir/servers.out")" >&2
  return 1
}

egress_net_down() {
  local p
  for p in "${egress_net_pids[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${egress_net_pids[@]}"; do
    wait "$p" 2>/dev/null
  done
  egress_net_pids=()
}
