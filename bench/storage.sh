#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/storage.sh BUILD_DIR [SECONDS] [REPS]: fio on btrfs on an Enclavia volume (directory
# backend, one local witness) against btrfs on a plain loop file, in the same run, alternating.
# Sequential write and read (1 MiB, O_DIRECT), random 4 KiB read and write IOPS (O_DIRECT) and
# fsync latency (4 KiB writes, fsync after each: p50/p99). Medians of REPS runs of SECONDS each;
# the ratios are what to read (these machines are noisy).
#
# fio runs on the host against a second mount of the enclave's btrfs (the device the local
# sandbox attached for the enclave, as its kernel would): every I/O takes the enclave's whole
# path — loop → nbdfuse → the enclave's NBD server → seal, Merkle map, segments at the host's
# storage service, witness acknowledgements on fsync — only fio itself sits outside.
# Needs root, FUSE, loop devices, btrfs and fio; prints why and exits 0 otherwise.
set -uo pipefail
build=$(cd "${1:-build}" && pwd)
seconds=${2:-3}
reps=${3:-3}
bin="$build/bin"
root=$(cd "$(dirname "$0")/.." && pwd)
why=""
[ "$(id -u)" -eq 0 ] || why="needs root"
[ -z "$why" ] && { [ ! -c /dev/fuse ] || [ ! -c /dev/loop-control ]; } && why="needs /dev/fuse and loop devices"
[ -z "$why" ] && ! grep -qw btrfs /proc/filesystems && why="needs btrfs"
for tool in fio nbdfuse mkfs.btrfs python3; do
  [ -z "$why" ] && ! command -v "$tool" >/dev/null && why="needs $tool"
done
if [ -n "$why" ]; then
  echo "bench/storage.sh: $why; skipping"
  exit 0
fi
work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
plain_loop=""
cleanup() {
  umount "$work/enclavia" "$work/plain" 2>/dev/null
  [ -n "$plain_loop" ] && losetup -d "$plain_loop" 2>/dev/null
  "$bin/enclavia" down >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/enclavia" up -d >/dev/null || exit 1
mkdir -p "$work/kv" "$work/enclavia" "$work/plain"
cp -r "$build/examples/kv/Enclaviafile" "$build/examples/kv/rootfs" "$work/kv/"
"$bin/enclavia" build "$work/kv" -o "$work/kv.eif" --no-progress >/dev/null || exit 1
"$bin/enclavia" deploy "$work/kv.eif" --name kv --storage 1G --witnesses 1 >/dev/null 2>&1 || {
  echo "bench/storage.sh: deploy failed"; exit 1; }
loop=""
for _ in $(seq 1 100); do
  loop=$(grep -o 'attached as /dev/nbd0 (loop[0-9]*' "$ENCLAVIA_HOME/host/enclaves/kv/sandbox.log" 2>/dev/null | tail -1 | grep -o 'loop[0-9]*')
  [ -n "$loop" ] && break
  sleep 0.2
done
mount -t btrfs "/dev/$loop" "$work/enclavia" || { echo "cannot mount /dev/$loop"; exit 1; }
truncate -s 1G "$work/plain.img"
mkfs.btrfs -q -f "$work/plain.img" >/dev/null
plain_loop=$(losetup -f --show "$work/plain.img")
mount -t btrfs "$plain_loop" "$work/plain"

# run TARGET NAME FIO_ARGS...: one fio job, JSON to $work/TARGET-NAME-REP.json
run() {
  local target=$1 name=$2 rep=$3; shift 3
  fio --name="$name" --directory="$work/$target" --output-format=json \
    --output="$work/$target-$name-$rep.json" "$@" >/dev/null 2>&1
}
jobs_for() {
  local target=$1 rep=$2
  run "$target" seqwrite "$rep" --rw=write --bs=1M --size=256M --direct=1 --end_fsync=1 \
    --runtime="$seconds" --filename=seq
  run "$target" seqread "$rep" --rw=read --bs=1M --size=256M --direct=1 --runtime="$seconds" \
    --filename=seq
  run "$target" randread "$rep" --rw=randread --bs=4k --size=256M --direct=1 --time_based \
    --runtime="$seconds" --filename=seq
  run "$target" randwrite "$rep" --rw=randwrite --bs=4k --size=256M --direct=1 --time_based \
    --runtime="$seconds" --end_fsync=1 --filename=seq
  run "$target" fsync "$rep" --rw=write --bs=4k --size=64M --fsync=1 --time_based \
    --runtime="$seconds" --filename=fsync
  rm -f "$work/$target/seq" "$work/$target/fsync"
}
for rep in $(seq 1 "$reps"); do
  jobs_for plain "$rep"
  jobs_for enclavia "$rep"
done

python3 - "$work" "$reps" <<'EOF'
import json, statistics, sys
work, reps = sys.argv[1], int(sys.argv[2])
def load(target, name, rep):
    try:
        return json.load(open(f"{work}/{target}-{name}-{rep}.json"))["jobs"][0]
    except Exception:
        return None
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")
def metric(target, name, f):
    return med([f(j) for j in (load(target, name, r) for r in range(1, reps + 1)) if j])
rows = [
    ("sequential write MB/s", "seqwrite", lambda j: j["write"]["bw"] / 1024, "higher", "≥ 0.9×"),
    ("sequential read MB/s", "seqread", lambda j: j["read"]["bw"] / 1024, "higher", "≥ 0.9×"),
    ("random 4 KiB read IOPS", "randread", lambda j: j["read"]["iops"], "higher", ""),
    ("random 4 KiB read latency p50 µs", "randread",
     lambda j: j["read"]["clat_ns"]["percentile"]["50.000000"] / 1000, "lower", "≤ 1.2×"),
    ("random 4 KiB write IOPS", "randwrite", lambda j: j["write"]["iops"], "higher", ""),
    ("fsync latency p50 µs", "fsync",
     lambda j: j["sync"]["lat_ns"]["percentile"]["50.000000"] / 1000, "lower", "+ ≤ 500 µs"),
    ("fsync latency p99 µs", "fsync",
     lambda j: j["sync"]["lat_ns"]["percentile"]["99.000000"] / 1000, "lower", ""),
]
print(f"bench/storage.sh: medians of {reps} runs; btrfs on an Enclavia volume (dir backend, 1 witness) vs btrfs on a loop file")
print(f"{'':38} {'enclavia':>12} {'plain loop':>12} {'ratio':>8}  goal")
for label, name, f, _, goal in rows:
    e, p = metric("enclavia", name, f), metric("plain", name, f)
    ratio = e / p if p else float("nan")
    extra = f"  (+{e - p:.0f} µs)" if "fsync" in label else ""
    print(f"{label:38} {e:12.1f} {p:12.1f} {ratio:8.2f}  {goal}{extra}")
EOF
