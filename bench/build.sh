#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/build.sh [BUILD_DIR] [MIB] [RUNS]: the image builder against the obvious baseline, in
# the same run on the same tree (these machines are noisy: medians and ratios, never absolute
# targets).
#   build ratio  = median `enclavia build` of a MIB-MiB application tree (cpio + EIF + PCR0/1/2
#                  + CRC + the lock check of every file's SHA-256)
#                  / median `find . | cpio -o -H newc | sha384sum` over the same tree.  Goal <= 1.3
#   hash ratio   = `openssl dgst -sha384` time / our time for one PCR over the same file, through
#                  the EIF pipeline's hashing path (4 MiB chunks, SHA-384, extend).  Goal >= 0.9
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
mib=${2:-200}
runs=${3:-5}
enclavia="$build/bin/enclavia"
pcr_hash="$build/bin/enclavia_pcr_hash_bench"
export ENCLAVIA_RUNTIME_DIR="$build/libexec/enclavia"
work=$(mktemp -d "${TMPDIR:-/tmp}/enclavia-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset SOURCE_DATE_EPOCH

# The tree: a few large files, many medium and many small ones, like an application image.
mkdir -p "$work/app/kernel"
python3 - "$work/app/rootfs" "$mib" <<'PY'
import os, sys
root, mib = sys.argv[1], int(sys.argv[2])
total = mib << 20
plan = [(int(total * 0.5), 5 << 20), (int(total * 0.32), 64 << 10), (int(total * 0.18), 4 << 10)]
rnd = os.urandom(8 << 20)
n = 0
for budget, size in plan:
    for i in range(budget // size):
        d = os.path.join(root, "d%03d" % (n % 97), "s%02d" % (n % 13))
        os.makedirs(d, exist_ok=True)
        off = (n * 7919) % (len(rnd) - size)
        with open(os.path.join(d, "f%06d" % n), "wb") as f:
            f.write(rnd[off:off + size])
        n += 1
print("bench: %d files, %d MiB" % (n, mib), file=sys.stderr)
PY
head -c $((8 << 20)) /dev/urandom >"$work/app/kernel/vmlinuz"
cat >"$work/app/Enclaviafile" <<'TOML'
[image]
name = "bench"
version = "1"
[app]
rootfs = "rootfs"
cmd = ["/d000/s00/f000000"]
port = 8080
[kernel]
path = "kernel/vmlinuz"
TOML

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
time_cmd() {  # time_cmd RUNS CMD...: prints the median wall time in seconds
  local n=$1; shift
  for _ in $(seq "$n"); do
    local t0; t0=$(now)
    "$@" >/dev/null
    awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }'
  done | median
}
baseline() { (cd "$work/app/rootfs" && find . | cpio -o -H newc --quiet | sha384sum); }
ours() { "$enclavia" build "$work/app" -o "$work/out.eif"; }

# Warm the page cache and write the lock, then alternate so drift hits both equally.
baseline >/dev/null
ours >/dev/null
b=() o=()
for _ in $(seq "$runs"); do
  b+=("$(time_cmd 1 baseline)")
  o+=("$(time_cmd 1 ours)")
done
tb=$(printf '%s\n' "${b[@]}" | median)
to=$(printf '%s\n' "${o[@]}" | median)
size=$(stat -c %s "$work/out.eif")

# PCR hashing against openssl over one file of the same size.
head -c $((mib << 20)) /dev/urandom >"$work/blob"
openssl dgst -sha384 "$work/blob" >/dev/null
tossl=$(time_cmd "$runs" openssl dgst -sha384 "$work/blob")
thash=$(time_cmd "$runs" "$pcr_hash" "$work/blob")
timage=$(time_cmd "$runs" "$pcr_hash" --image "$work/blob")

printf 'bench: tree %d MiB, image %d MiB, %d runs each (medians)\n' "$mib" $((size >> 20)) "$runs"
printf '  find | cpio -o -H newc | sha384sum   %8.3f s\n' "$tb"
printf '  enclavia build -o image.eif          %8.3f s\n' "$to"
printf '  build ratio (ours / baseline)        %8.2f   (goal <= 1.3)\n' "$(awk -v a="$to" -v b="$tb" 'BEGIN { print a / b }')"
printf '  openssl dgst -sha384                 %8.3f s\n' "$tossl"
printf '  PCR hashing (enclavia)               %8.3f s\n' "$thash"
printf '  hash ratio (openssl / ours)          %8.2f   (goal >= 0.9)\n' "$(awk -v a="$tossl" -v b="$thash" 'BEGIN { print a / b }')"
printf '  whole-image measurement (PCR0+PCR1 over the file, CRC; 2 threads)  %.3f s = %.2fx openssl\n' \
  "$timage" "$(awk -v a="$timage" -v b="$tossl" 'BEGIN { print a / b }')"
