#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# storage_test BIN_DIR BUILD_DIR TOOLS_DIR [BACKEND]: volumes end to end, with real processes, a
# real btrfs and (for BACKEND=s3) a real s3rver.
#   enclavia up -d → build kv (with an owner recovery key) → deploy --storage with a witness
#   enclave → PUT/GET through the attested proxy → no plaintext anywhere on the host → restart:
#   the value is read back → the host rolls the volume back: mount refused with both versions,
#   the app never starts → restored: served again → one ciphertext bit flipped: an error, never
#   wrong data → the witness loses its state: refused until `enclavia storage recover` →
#   crash consistency: kill -9 the enclave, and separately the host agent (the backend), at
#   random points of a PUT+fsync workload; after each restart every acknowledged value is there
#   and `btrfs scrub` finds nothing → snapshot, backup, storage ls.
# Needs root, namespaces, /dev/fuse, loop devices, btrfs, nbdfuse; exits 77 (skip) otherwise.
# STORAGE_CRASH_ITERATIONS (default 50) sets the crash loop's length.
set -uo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
build=$(cd "${2:?build dir}" && pwd)
tools=$(cd "${3:?tools dir}" && pwd)
backend_kind=${4:-dir}
iterations=${STORAGE_CRASH_ITERATIONS:-50}
why=""
[ "$(id -u)" -eq 0 ] || why="needs root"
[ -z "$why" ] && ! unshare --mount --pid --net --fork true 2>/dev/null && why="needs Linux namespaces"
[ -z "$why" ] && [ ! -c /dev/fuse ] && why="needs /dev/fuse"
[ -z "$why" ] && [ ! -c /dev/loop-control ] && why="needs loop devices"
[ -z "$why" ] && ! grep -qw btrfs /proc/filesystems && ! modprobe btrfs 2>/dev/null && why="needs btrfs"
for tool in nbdfuse mkfs.btrfs btrfs curl python3; do
  [ -z "$why" ] && ! command -v "$tool" >/dev/null && why="needs $tool (scripts/install-deps)"
done
s3rver="$(cd "$(dirname "$0")/.." && pwd)/tools/s3rver/node_modules/.bin/s3rver"
if [ -z "$why" ] && [ "$backend_kind" = s3 ] && { [ ! -x "$s3rver" ] || ! command -v node >/dev/null; }; then
  why="needs s3rver (scripts/install-deps)"
fi
if [ -n "$why" ]; then
  echo "storage_test: $why; skipping"
  exit 77
fi
work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
proxy_pid=""
s3_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  "$bin/enclavia" down >/dev/null 2>&1
  pkill -9 -f "enclavia-sandbox --dir $ENCLAVIA_HOME" 2>/dev/null
  [ -n "$s3_pid" ] && kill "$s3_pid" 2>/dev/null
  umount "$work/scrub" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"
# shellcheck source=/dev/null
source "$tools/processes.sh"
enclavia() { "$bin/enclavia" "$@"; }
# Debian's python3 first: a pyenv shim on PATH takes half a second to start.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
json() { "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

backend=dir
if [ "$backend_kind" = s3 ]; then
  s3_port=$(free_port)
  mkdir -p "$work/s3"
  # Node ≥ 17 keeps the DES that s3rver's list continuation tokens use behind this flag.
  node --openssl-legacy-provider "$(readlink -f "$s3rver")" -d "$work/s3" -a 127.0.0.1 \
    -p "$s3_port" -s --configure-bucket volumes >"$work/s3.log" 2>&1 &
  s3_pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break; sleep 0.1; done
  export ENCLAVIA_S3_ENDPOINT="http://127.0.0.1:$s3_port" AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
  backend="s3://volumes/test"
fi

# kv PUT KEY VALUE / kv GET KEY through the attested proxy; prints the HTTP status (PUT) or body.
put() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT --data-binary "$2" "http://127.0.0.1:$proxy_port/kv/$1"; }
get() { curl -s --max-time 30 -w '\n%{http_code}' "http://127.0.0.1:$proxy_port/kv/$1"; }
value_is() { [ "$(get "$1")" = "$2"$'\n200' ]; }
inspect() { enclavia inspect kv >"$work/inspect.json" 2>"$work/inspect.err"; }
state() { inspect; json "$work/inspect.json" 'd["state"]'; }
storage_field() { inspect; json "$work/inspect.json" "(d.get('storage') or {}).get('status',{}).get('$1','')"; }
# wait_state STATE: until the enclave is in STATE (≤ 60 s).
wait_state() { for _ in $(seq 1 300); do [ "$(state)" = "$1" ] && return 0; sleep 0.2; done; return 1; }
# wait_served: until GET /healthz answers through the proxy (≤ 60 s).
wait_served() {
  for _ in $(seq 1 300); do
    [ "$(curl -s --max-time 5 "http://127.0.0.1:$proxy_port/healthz")" = ok ] && return 0
    sleep 0.2
  done
  return 1
}
# scrub: a second mount of the volume's device on the host (the local stand-in for the enclave
# kernel sees it as /dev/loopN, named in sandbox.log), then `btrfs scrub`.
scrub() {
  local loop
  loop=$(grep -o 'attached as /dev/nbd0 (loop[0-9]*' "$ENCLAVIA_HOME/host/enclaves/kv/sandbox.log" | tail -1 | grep -o 'loop[0-9]*')
  [ -n "$loop" ] || return 1
  mkdir -p "$work/scrub"
  mount -t btrfs "/dev/$loop" "$work/scrub" || return 1
  btrfs scrub start -B "$work/scrub" >"$work/scrub.out" 2>&1
  local rc=$?
  umount "$work/scrub"
  [ "$rc" -eq 0 ] && grep -q "no errors found" "$work/scrub.out"
}

# save_volume DIR / restore_volume DIR: the host keeps a copy of the volume's objects and later
# serves that copy instead (for S3 through the S3 API, as a bucket's operator could).
s3_sync() {  # s3_sync save|restore DIR
  "$py" - "$1" "$2" "$ENCLAVIA_S3_ENDPOINT/volumes" "test/kv/" <<'PY'
import os, re, sys, urllib.request
mode, local, bucket, prefix = sys.argv[1:]
def call(method, url, data=None):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req) as r:
        return r.read()
def keys():
    out, token = [], None
    while True:
        url = f"{bucket}?list-type=2&prefix={prefix}" + (f"&continuation-token={token}" if token else "")
        xml = call("GET", url).decode()
        out += re.findall(r"<Key>([^<]*)</Key>", xml)
        m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", xml)
        if not m:
            return out
        token = m.group(1)
if mode == "save":
    for k in keys():
        path = os.path.join(local, k[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(call("GET", f"{bucket}/{k}"))
else:
    for k in keys():
        call("DELETE", f"{bucket}/{k}")
    for root, _, files in os.walk(local):
        for f in files:
            path = os.path.join(root, f)
            call("PUT", f"{bucket}/{prefix}{os.path.relpath(path, local)}", open(path, "rb").read())
PY
}
save_volume() {
  if [ "$backend_kind" = s3 ]; then mkdir -p "$1" && s3_sync save "$1"; else cp -a "$store_dir" "$1"; fi
}
restore_volume() {
  if [ "$backend_kind" = s3 ]; then s3_sync restore "$1"; else rm -rf "$store_dir" && cp -a "$1" "$store_dir"; fi
}

# kill_enclave: kill -9 the enclave's PID 1 (in the host's PID namespace, from state.json).
kill_enclave() {
  kill -9 "$(json "$ENCLAVIA_HOME/host/enclaves/kv/state.json" 'd["init_pid"]')" 2>/dev/null
}

expect 0 "up -d" -- enclavia up -d

# ── an image with a volume and an owner key ───────────────────────────────────────────────────
expect 0 "storage keygen" -- enclavia storage keygen -o "$work/owner.pem"
recovery_key=$(grep -o 'recovery_key = "[0-9a-f]*"' "$work/out")
check "keygen prints the recovery key" [ -n "$recovery_key" ]
mkdir -p "$work/kv"
cp -r "$build/examples/kv/rootfs" "$work/kv/"
sed "s|^path = \"/data\"|path = \"/data\"\n$recovery_key|" "$build/examples/kv/Enclaviafile" >"$work/kv/Enclaviafile"
expect 0 "build kv" -- enclavia build "$work/kv" -o "$work/kv.eif" --no-progress
enclavia describe "$work/kv.eif" --json >"$work/describe.json"

expect 0 "deploy kv with a volume and a witness" -- \
  enclavia deploy "$work/kv.eif" --name kv --storage 256M --backend "$backend" --witnesses 1 --json
cp "$work/out" "$work/kv.json"
check "deploy started the witness" grep -q "started witness-1" "$work/err"
check "the witness runs" [ "$(enclavia inspect witness-1 2>/dev/null | "$py" -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = running ]
wait_state running
for _ in $(seq 1 100); do [ "$(storage_field state)" = mounted ] && break; sleep 0.2; done
check "inspect: the volume is mounted" [ "$(storage_field state)" = mounted ]
check "inspect: protected by a witness" grep -q "protected (1 witness" <<<"$(storage_field protection)"
v1=$(storage_field version)

expect 0 "trust kv" -- enclavia trust kv -o "$work/kv.toml"
url=$(json "$work/kv.json" 'd["url"]')
proxy_port=$(free_port)
"$bin/enclavia" proxy --listen "tcp:127.0.0.1:$proxy_port" --enclave "$url" --trust "$work/kv.toml" \
  --port 8080 >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
wait_line "$work/proxy.out" "listening on" >/dev/null
marker="plaintext-marker-$(head -c 8 /dev/urandom | xxd -p)"
check "PUT a value (fsync'd)" [ "$(put greeting "$marker-1")" = 204 ]
latest="$marker-1"
check "GET it back" value_is greeting "$marker-1"
sleep 0.6  # The enclave reports its status four times a second.
check "the commit advanced the version" [ "$(storage_field version)" -gt "$v1" ]
sync
# Where the backend keeps the objects, as files (s3rver keeps a bucket as a directory too).
if [ "$backend_kind" = s3 ]; then store_dir="$work/s3/volumes"; else store_dir="$ENCLAVIA_HOME/host/volumes/kv"; fi
check "the backend holds segments" [ -n "$(find "$store_dir" -type f | head -1)" ]
# (Not under enclaves/*/fuse: that is the local stand-in for the enclave kernel's view of its
# block device, nbdfuse's mount; on Nitro it is inside the enclave.)
check "no plaintext anywhere on the host" bash -c "! grep -rqa --exclude-dir=fuse '$marker' '$ENCLAVIA_HOME' '$store_dir'"

# ── restart: the value survives ───────────────────────────────────────────────────────────────
expect 0 "restart kv" -- enclavia restart kv
wait_served
check "after restart the value is read back" value_is greeting "$marker-1"

# ── the host rolls the volume back ─────────────────────────────────────────────────────────────
save_volume "$work/old-volume"
check "PUT a newer value" [ "$(put greeting "$marker-2")" = 204 ]
latest="$marker-2"
sleep 0.6
acked=$(storage_field version)
# The enclave stops (here: killed, so it writes nothing more); the host swaps in its old copy.
kill_enclave
wait_state stopped
save_volume "$work/current-volume"
restore_volume "$work/old-volume"
enclavia restart kv >/dev/null 2>&1
for _ in $(seq 1 150); do [ "$(storage_field state)" = error ] && break; sleep 0.2; done
error=$(storage_field error)
check "rollback refused, naming the word rollback" grep -q "rollback" <<<"$error"
served_v=$(sed -nE 's/.*serves version ([0-9]+) .*/\1/p' <<<"$error")
acked_w=$(sed -nE 's/.*acknowledged version ([0-9]+).*/\1/p' <<<"$error")
# The witnesses hold at least the version of the PUT (the clean stop may commit once more).
both_versions() { [ -n "$served_v" ] && [ -n "$acked_w" ] && [ "$served_v" -lt "$acked_w" ] && [ "$acked_w" -ge "$acked" ]; }
check "rollback refused, naming both versions (host $served_v < acked $acked_w >= $acked)" both_versions
check "inspect shows the enclave stopped" wait_state stopped
check "the app never served the old value" bash -c "! curl -s --max-time 3 http://127.0.0.1:$proxy_port/kv/greeting | grep -q '$marker-1'"
restore_volume "$work/current-volume"
expect 0 "restart kv on the honest volume" -- enclavia restart kv
wait_served
check "the newest value is back" value_is greeting "$latest"

if [ "$backend_kind" = dir ]; then
  # One flipped ciphertext bit in every segment: errors (or a refused mount), never wrong data.
  # The same bits flipped back restore the volume (the enclave may have committed on top).
  flip() {
    for seg in "$store_dir"/seg/*; do
      "$py" -c "import os,sys; p=sys.argv[1]; n=os.path.getsize(p)//2; f=open(p,'r+b'); f.seek(n); b=f.read(1); f.seek(n); f.write(bytes([b[0]^1]))" "$seg"
    done
  }
  ls "$store_dir/seg" >"$work/flipped"
  flip
  enclavia restart kv >/dev/null 2>&1
  sleep 2
  got=$(curl -s --max-time 10 "http://127.0.0.1:$proxy_port/kv/greeting")
  check "a flipped bit never yields wrong data" bash -c "[ -z '$got' ] || [ '$got' = '$latest' ] || ! grep -q '$marker' <<<'$got'"
  for seg in $(cat "$work/flipped"); do
    # (A segment the enclave collected meanwhile is gone: nothing to restore.)
    [ -f "$store_dir/seg/$seg" ] &&
      "$py" -c "import os,sys; p=sys.argv[1]; n=os.path.getsize(p)//2; f=open(p,'r+b'); f.seek(n); b=f.read(1); f.seek(n); f.write(bytes([b[0]^1]))" "$store_dir/seg/$seg"
  done
  enclavia restart kv >/dev/null 2>&1
  wait_served
  check "bits restored: the value is back" value_is greeting "$latest"
fi

# ── every witness loses its state: recovery by the owner ──────────────────────────────────────
epoch_before=$(storage_field epoch)
# The enclave goes first (killed: a running enclave would re-register its state with the
# restarted witness on its next commit, which is right, but not this case).
kill_enclave
wait_state stopped
expect 0 "restart the witness (its memory is gone)" -- enclavia restart witness-1
enclavia restart kv >/dev/null 2>&1
for _ in $(seq 1 150); do [ "$(storage_field state)" = error ] && break; sleep 0.2; done
check "mount refused: the witnesses have no record" grep -q "witnesses have no record" <<<"$(storage_field error)"
expect 0 "storage recover with the owner key" -- enclavia storage recover kv --key "$work/owner.pem"
wait_served
check "recovered: the value is back" value_is greeting "$latest"
check "recovery bumped the epoch" [ "$(storage_field epoch)" -gt "$epoch_before" ]

# ── crash consistency ─────────────────────────────────────────────────────────────────────────
: >"$work/acked"
n=0
for i in $(seq 1 "$iterations"); do
  # A few acknowledged writes, then one in flight when the crash comes.
  for j in 1 2; do
    n=$((n + 1))
    if [ "$(put "k$n" "v$n-$i")" = 204 ]; then echo "k$n v$n-$i" >>"$work/acked"; fi
  done
  n=$((n + 1))
  (put "k$n" "v$n-$i" >"$work/inflight.code") &
  inflight=$!
  sleep "0.0$((RANDOM % 10))"
  if [ $((i % 2)) -eq 0 ]; then
    kill_enclave
  else
    # kill -9 the host agent, which holds the storage backend; then bring it back.
    pkill -9 -f "enclavia-host --data-dir $ENCLAVIA_HOME" 2>/dev/null
    sleep 0.2
    enclavia up -d >/dev/null 2>&1
  fi
  wait "$inflight"
  [ "$(cat "$work/inflight.code")" = 204 ] && echo "k$n v$n-$i" >>"$work/acked"
  enclavia restart kv >/dev/null 2>&1
  wait_served || { echo "crash $i: kv did not come back: $(storage_field error)" >&2; break; }
done
missing=0
while read -r key value; do
  value_is "$key" "$value" || { missing=$((missing + 1)); echo "lost after a crash: $key" >&2; }
done <"$work/acked"
check "every acknowledged write survived $iterations crashes ($(wc -l <"$work/acked") writes)" [ "$missing" -eq 0 ]
check "btrfs scrub finds nothing" scrub

# ── snapshots, backups, listing ───────────────────────────────────────────────────────────────
expect 0 "storage snapshot" -- enclavia storage snapshot kv --tag before
check "the snapshot holds objects" [ -n "$(find "$ENCLAVIA_HOME/host/snapshots/kv/before" -type f | head -1)" ]
expect 0 "storage backup" -- enclavia storage backup kv --to "dir:$work/backup"
check "the backup holds the segments" [ -n "$(ls "$work/backup/seg" 2>/dev/null)" ]
check "the backup holds no plaintext" bash -c "! grep -rqa '$marker' '$work/backup'"
expect 0 "storage ls" -- enclavia storage ls
check "storage ls shows kv mounted" grep -Eq '^kv .*mounted' "$work/out"
expect 0 "storage inspect" -- enclavia storage inspect kv
check "storage inspect counts segments" grep -q '"segments"' "$work/out"

expect 0 "down" -- enclavia down
finish
