#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# platform_test BIN_DIR BUILD_DIR TOOLS_DIR: the platform end to end, with real processes.
#   enclavia up -d → build hello twice (same PCRs) → deploy → trust → proxy → curl;
#   a second enclave (the probe) at the same time: no way out, no host files, an unprivileged
#   uid, only lo, held to its memory limit, restarted after a crash; kill -9 of the host agent,
#   then up again: the enclaves are re-attached and clients re-verify; a debug enclave attests
#   zero PCRs and a default trust file refuses it, while its console reaches `logs`; bad images
#   are refused with one line and nothing launched; the audit endpoint; rm; down leaves no
#   process, mount or socket behind.
# Needs root (Linux namespaces); exits 77 (skip) otherwise.
set -uo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
build=$(cd "${2:?build dir}" && pwd)
tools=$(cd "${3:?tools dir}" && pwd)
if [ "$(id -u)" -ne 0 ] || ! unshare --mount --pid --net --fork true 2>/dev/null; then
  echo "platform_test: needs root and Linux namespaces; skipping"
  exit 77
fi
work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
proxy_pids=()
cleanup() {
  for p in "${proxy_pids[@]}"; do kill "$p" 2>/dev/null; done
  "$bin/enclavia" down >/dev/null 2>&1
  pkill -9 -f "enclavia-sandbox --dir $ENCLAVIA_HOME" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"
# shellcheck source=/dev/null
source "$tools/processes.sh"
enclavia() { "$bin/enclavia" "$@"; }

# json FILE EXPR: a field of a JSON file (python3 is in install-deps).
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

# via NAME TRUST PORT PATH: one HTTP GET through an attested channel (enclavia connect).
via() {
  local url
  url=$(json "$work/$1.json" 'd["url"]')
  printf 'GET %s HTTP/1.1\r\nHost: probe\r\n\r\n' "$4" |
    timeout 20 "$bin/enclavia" connect "$url" --trust "$2" --port "$3" 2>>"$work/connect.err" |
    tr -d '\r' | sed '1,/^$/d'
}

# ── up ────────────────────────────────────────────────────────────────────────────────────────
expect 0 "up -d" -- enclavia up -d
check "up prints the data dir" grep -q "data in $ENCLAVIA_HOME" "$work/out"
expect 0 "up again is a no-op" -- enclavia up -d
check "second up says already running" grep -q "already running" "$work/out"
check "simulator root exists" [ -s "$ENCLAVIA_HOME/nsm/root.pem" ]

# ── build hello twice: identical images ────────────────────────────────────────────────────────
# The Enclaviafile and rootfs only: a lock left in the build tree by an earlier runtime would
# (rightly) refuse the build.
for copy in hello-a hello-b; do
  mkdir -p "$work/$copy"
  cp -r "$build/examples/hello/Enclaviafile" "$build/examples/hello/rootfs" "$work/$copy/"
done
expect 0 "build hello (a)" -- enclavia build "$work/hello-a" -o "$work/hello-a.eif" --no-progress
expect 0 "build hello (b)" -- enclavia build "$work/hello-b" -o "$work/hello-b.eif" --no-progress
check "two builds are byte-identical" cmp -s "$work/hello-a.eif" "$work/hello-b.eif"
enclavia describe "$work/hello-a.eif" --json >"$work/describe.json"

# ── deploy, trust, proxy, curl ─────────────────────────────────────────────────────────────────
expect 0 "deploy hello" -- enclavia deploy "$work/hello-a.eif" --name hello --json
cp "$work/out" "$work/hello.json"
for i in 0 1 2; do
  check "deploy reports PCR$i of the image" \
    [ "$(json "$work/hello.json" "d['pcrs']['$i']")" = "$(json "$work/describe.json" "d['Measurements']['PCR$i']")" ]
done
check "deploy reports a ws:// URL" grep -q '"url": "ws://127.0.0.1:' "$work/hello.json"
expect 1 "a second enclave with the same name is refused" -- \
  enclavia deploy "$work/hello-a.eif" --name hello
check "duplicate name: one line" [ "$(wc -l <"$work/err")" -eq 1 ]
expect 0 "trust hello" -- enclavia trust hello -o "$work/hello.toml"
check "trust file names PCR0" grep -q "PCR0 = \"$(json "$work/hello.json" "d['pcrs']['0']")\"" "$work/hello.toml"
url=$(json "$work/hello.json" 'd["url"]')
expect 0 "verify hello" -- enclavia verify "$url" --trust "$work/hello.toml"
check "verify prints PCR0" grep -q "PCR0: *$(json "$work/hello.json" "d['pcrs']['0']")" "$work/out"

proxy_port=$(free_port)
"$bin/enclavia" proxy --listen "tcp:127.0.0.1:$proxy_port" --enclave "$url" --trust "$work/hello.toml" \
  --port 8080 >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pids+=($!)
wait_line "$work/proxy.out" "listening on" >/dev/null || echo "proxy did not start: $(cat "$work/proxy.err")" >&2
check "curl through the proxy" [ "$(curl -s --max-time 10 "http://127.0.0.1:$proxy_port/")" = "hello from the enclave: hi" ]

# The host's metrics count what it relayed, and nothing of what it could not read.
agent_api="http://${ENCLAVIA_HOME:+$(sed 's/^tcp://' "$ENCLAVIA_HOME/host/address")}"
curl -s --max-time 5 "$agent_api/metrics" >"$work/metrics.txt"
check "metrics: handshakes counted" grep -Eq '^enclavia_relay_handshakes_total\{enclave="hello"\} [1-9]' "$work/metrics.txt"
check "metrics: ciphertext bytes counted" grep -Eq '^enclavia_relay_bytes_total\{enclave="hello",direction="down"\} [1-9]' "$work/metrics.txt"
check "metrics: no plaintext" bash -c "! grep -q 'hello from the enclave' '$work/metrics.txt'"
check "healthz is public" [ "$(curl -s -o /dev/null -w '%{http_code}' "$agent_api/healthz")" = 200 ]
check "the agent API wants its token" [ "$(curl -s -o /dev/null -w '%{http_code}' "$agent_api/v1/enclaves")" = 401 ]

# The audit endpoint: a fresh document for our nonce, bound to the channel key.
nonce=$(head -c 16 /dev/urandom | xxd -p)
http_port=${url#ws://127.0.0.1:}; http_port=${http_port%/}
curl -s --max-time 10 "http://127.0.0.1:$http_port/.well-known/enclavia/attestation?nonce=$nonce" >"$work/audit.json"
python3 -c "import json,base64,sys; open(sys.argv[2],'wb').write(base64.b64decode(json.load(open(sys.argv[1]))['document']))" \
  "$work/audit.json" "$work/audit.cbor" 2>/dev/null
expect 0 "audit document verifies with our nonce" -- enclavia attest verify "$work/audit.cbor" \
  --root "$ENCLAVIA_HOME/nsm/root.pem" --no-aws-root --nonce "$nonce" \
  --pcr "0=$(json "$work/hello.json" "d['pcrs']['0']")"
check "a bad nonce is a 400" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/.well-known/enclavia/attestation?nonce=zz")" = 400 ]

# ── a second enclave at once: the probe, held to 128 MiB ──────────────────────────────────────
mkdir -p "$work/probe"
cp -r "$build/tests/platform/probe/Enclaviafile" "$build/tests/platform/probe/rootfs" "$work/probe/"
expect 0 "build probe" -- enclavia build "$work/probe" -o "$work/probe.eif" --no-progress
expect 0 "deploy probe" -- enclavia deploy "$work/probe.eif" --name probe --memory 128 --json
cp "$work/out" "$work/probe.json"
expect 0 "trust probe" -- enclavia trust probe -o "$work/probe.toml"
enclavia ls >"$work/ls.txt"
check "ls shows both enclaves running" [ "$(grep -c ' running ' "$work/ls.txt")" -eq 2 ]
check "hello still answers beside the probe" [ "$(curl -s --max-time 10 "http://127.0.0.1:$proxy_port/")" = "hello from the enclave: hi" ]

first=$(via probe "$work/probe.toml" 8081 /)
check "probe answers" grep -q '^probe boot=' <<<"$first"
check "the app runs unprivileged" bash -c "! grep -q 'uid=0\$' <<<'$first'"
host_port=$(sed -n 's/^tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$ENCLAVIA_HOME/control/address")
check "no way out: the host's control plane" grep -q '^error' <<<"$(via probe "$work/probe.toml" 8081 "/connect?ip=127.0.0.1&port=$host_port")"
check "no way out: the internet" grep -q '^error' <<<"$(via probe "$work/probe.toml" 8081 "/connect?ip=1.1.1.1&port=80")"
check "only lo" [ "$(via probe "$work/probe.toml" 8081 /net)" = "lo" ]
check "no host files: the data dir" grep -q '^missing' <<<"$(via probe "$work/probe.toml" 8081 "/file?path=$ENCLAVIA_HOME/control/token")"
check "no host files: /etc/hostname" grep -q '^missing' <<<"$(via probe "$work/probe.toml" 8081 "/file?path=/etc/hostname")"
check "/proc shows only the enclave's processes" [ "$(via probe "$work/probe.toml" 8081 "/ls?path=/proc" | grep -c '^[0-9]*$')" -lt 10 ]

boot() { sed -n 's/^probe boot=\([0-9a-f]*\) .*/\1/p' <<<"$1"; }
# wait_probe NAME TRUST: the probe's / once it answers again (after a restart).
wait_probe() {
  local answer=""
  for _ in $(seq 100); do
    answer=$(via "$1" "$2" 8081 /)
    grep -q '^probe boot=' <<<"$answer" && break
    sleep 0.2
  done
  echo "$answer"
}

# Memory limit: 300 MiB in a 128 MiB enclave must not succeed (the OOM killer or a failed
# allocation stops it); init then restarts the app.
big=$(via probe "$work/probe.toml" 8081 "/alloc?mib=300")
check "held to its memory limit" bash -c "! grep -q '^allocated' <<<'$big'"
wait_probe probe "$work/probe.toml" >/dev/null
check "a modest allocation works" grep -q '^allocated 16' <<<"$(via probe "$work/probe.toml" 8081 "/alloc?mib=16")"
# A crash: the app exits 3 and init restarts it (policy on-failure): a new boot id.
before_crash=$(wait_probe probe "$work/probe.toml")
via probe "$work/probe.toml" 8081 "/crash?code=3" >/dev/null
again=$(wait_probe probe "$work/probe.toml")
check "restarted after the crash" [ -n "$(boot "$again")" ]
check "the restart is a new process (new boot id)" [ "$(boot "$before_crash")" != "$(boot "$again")" ]

# ── kill -9 of the host agent; up again re-attaches ───────────────────────────────────────────
kill -9 "$(cat "$ENCLAVIA_HOME/host/pid")"
sleep 0.5
expect 0 "up after the agent died" -- enclavia up -d
enclavia ls --json >"$work/ls2.json"
check "hello re-attached, same URL" [ "$(json "$work/ls2.json" "[e['url'] for e in d if e['name']=='hello'][0]")" = "$url" ]
check "hello still running" [ "$(json "$work/ls2.json" "[e['state'] for e in d if e['name']=='hello'][0]")" = running ]
ok=""
for _ in $(seq 50); do
  ok=$(curl -s --max-time 5 "http://127.0.0.1:$proxy_port/")
  [ "$ok" = "hello from the enclave: hi" ] && break
  sleep 0.2
done
check "the proxy re-verified and serves again" [ "$ok" = "hello from the enclave: hi" ]
check "the probe kept running through the agent's death (same boot id)" [ "$(boot "$(via probe "$work/probe.toml" 8081 /)")" = "$(boot "$again")" ]

# ── debug mode ─────────────────────────────────────────────────────────────────────────────────
expect 0 "deploy a debug probe" -- enclavia deploy "$work/probe.eif" --name dbg --debug --json
cp "$work/out" "$work/dbg.json"
check "debug enclave attests zero PCR0" [ "$(json "$work/dbg.json" "d['pcrs']['0']")" = "$(printf '0%.0s' $(seq 96))" ]
dbg_url=$(json "$work/dbg.json" 'd["url"]')
expect 1 "a default trust file refuses a debug enclave" -- enclavia verify "$dbg_url" --trust "$work/probe.toml"
check "the refusal names debug" grep -qi debug "$work/err"
expect 0 "trust dbg (allow_debug)" -- enclavia trust dbg -o "$work/dbg.toml"
check "a debug enclave serves" [ "$(via dbg "$work/dbg.toml" 8081 '/echo?text=to-the-console')" = to-the-console ]
sleep 0.3
expect 0 "logs dbg" -- enclavia logs dbg
check "logs show the app's output" grep -q 'probe: to-the-console' "$work/out"
via probe "$work/probe.toml" 8081 '/echo?text=secret-output' >/dev/null
expect 1 "logs of a production enclave are refused" -- enclavia logs probe
check "the refusal says why" grep -q 'not a debug enclave' "$work/err"
check "nothing of a production enclave's output on the host" bash -c \
  "! grep -rqs secret-output '$ENCLAVIA_HOME'"

# ── bad images: one line, nothing launched ─────────────────────────────────────────────────────
before=$(ls "$ENCLAVIA_HOME/host/enclaves" | sort | tr '\n' ' ')
for mode in badcrc truncated nokernel noramdisk oversized; do
  python3 "$tools/eif_mangle.py" "$work/hello-a.eif" "$work/bad-$mode.eif" "$mode"
  expect 1 "refuses a bad image ($mode)" -- enclavia deploy "$work/bad-$mode.eif" --name "bad-$mode"
  check "bad image ($mode): one line" [ "$(wc -l <"$work/err")" -eq 1 ]
done
check "bad CRC named" grep -qi crc <(enclavia deploy "$work/bad-badcrc.eif" --name bad-badcrc 2>&1)
check "nothing launched for bad images" [ "$(ls "$ENCLAVIA_HOME/host/enclaves" | sort | tr '\n' ' ')" = "$before" ]
check "ls lists no bad image" bash -c "! '$bin/enclavia' ls | grep -q '^bad-'"

# ── restart, rm, down ──────────────────────────────────────────────────────────────────────────
expect 0 "restart probe" -- enclavia restart probe
check "probe answers after restart" grep -q '^probe boot=' <<<"$(via probe "$work/probe.toml" 8081 /)"
expect 0 "rm dbg" -- enclavia rm dbg
expect 1 "inspect of a removed enclave fails" -- enclavia inspect dbg
sandboxes=$(pgrep -f "enclavia-sandbox --dir $ENCLAVIA_HOME" | tr '\n' ' ')
check "one sandbox per running enclave" [ "$(wc -w <<<"$sandboxes")" -eq 2 ]
expect 0 "down" -- enclavia down
check "down removed the enclaves" grep -q '2 enclaves removed' "$work/out"
check "no enclavia process left" bash -c "! pgrep -f 'enclavia-(sandbox|host|control) .*$ENCLAVIA_HOME' >/dev/null"
check "no mount left" bash -c "! grep -q '$ENCLAVIA_HOME' /proc/self/mountinfo"
check "no socket left" [ -z "$(find "$ENCLAVIA_HOME" -type s 2>/dev/null)" ]
check "no enclave directory left" [ -z "$(ls -A "$ENCLAVIA_HOME/host/enclaves" 2>/dev/null)" ]
expect 1 "ls after down names the fix" -- enclavia ls
check "the error says enclavia up" grep -q 'enclavia up' "$work/err"
finish
