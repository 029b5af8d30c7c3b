#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# runtime_reproducible_test SOURCE_DIR [BUILT_DIR]: builds the enclave runtime (`enclavia-runtime`)
# from two copies of SOURCE_DIR that differ in everything a build must not depend on — absolute
# path and its length, file creation order, umask, mtimes, time zone, wall-clock time — and checks
# that every file of libexec/enclavia/ (the binaries of ramdisk 1 and runtime.toml) is
# byte-identical. With BUILT_DIR (a Release build of SOURCE_DIR itself, as ctest passes), that
# build is the first of the two and only the second, differing copy is built here.
# docs/reproducible-builds.md explains what makes it so. Exit 77 (skipped) without cmake/ninja.
# Set KEEP=1 to keep the two trees for inspection.
set -uo pipefail
src=$(cd "${1:?path to the source tree}" && pwd)
built=${2:-}
for tool in cmake ninja sha256sum shuf readelf tar perl; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: runtime_reproducible needs $tool (scripts/install-deps installs it)"
    exit 77
  fi
done
work=$(mktemp -d)
# The second copy goes on tmpfs when there is room: its directories then list files in another
# order than the first copy's file system does (creation order alone does not change readdir
# order on hashed-directory file systems such as ext4).
work2=$work
if [ -d /dev/shm ] && [ -w /dev/shm ] &&
  [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt 2097152 ]; then
  work2=$(mktemp -d /dev/shm/enclavia-repro-XXXXXX)
fi
if [ "${KEEP:-0}" = 1 ]; then
  trap 'echo "kept $work $work2"' EXIT
else
  trap 'rm -rf "$work" "$work2"' EXIT
fi
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"

# The files of the tree: what git tracks (plus new files not ignored yet, so an uncommitted change
# is tested too), else everything except build directories and .git.
if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
  git -C "$src" ls-files -z --cached --others --exclude-standard | sort -zu >"$work/all"
else
  (cd "$src" && find . \( -path './build*' -o -path ./.git \) -prune -o \( -type f -o -type l \) \
    -printf '%P\0') | sort -z >"$work/all"
fi
# Tracked files deleted in the work tree are not part of it.
while IFS= read -r -d '' f; do
  if [ -e "$src/$f" ] || [ -L "$src/$f" ]; then printf '%s\0' "$f"; fi
done <"$work/all" >"$work/files"
nfiles=$(tr -cd '\0' <"$work/files" | wc -c)

# copy_tree DEST UMASK FIRST_YEAR: copies the files in a shuffled order (tar extracts in archive
# order) under UMASK, then gives each a random mtime in the ten years from FIRST_YEAR.
copy_tree() {
  local dest=$1 mask=$2 year=$3
  mkdir -p "$dest"
  shuf -z "$work/files" >"$dest.order"
  (
    umask "$mask"
    tar -C "$src" --null --no-recursion -T "$dest.order" -cf - |
      tar -C "$dest" --no-same-permissions --no-same-owner -xf -
  ) || return 1
  (cd "$dest" && BASE=$(date -u -d "$year-01-01" +%s) perl -0 -ne \
    'chomp; next if -l; $t = $ENV{BASE} + int(rand(315360000)); utime($t, $t, $_) or die "$_: $!\n"' \
    "$dest.order") || return 1
  # Under umask 077 only the owner can read the copy, which is all the build (same user) needs.
  chmod -R u+rwX "$dest"
}

# build_tree TREE UMASK TZ: configures and builds only the runtime, under UMASK and TZ.
build_tree() {
  local tree=$1 mask=$2 tz=$3
  (
    umask "$mask"
    export TZ=$tz
    cmake -S "$tree" -B "$tree/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DENCLAVIA_BUILD_TESTS=OFF -DENCLAVIA_BUILD_BENCH=OFF >"$tree.configure.log" 2>&1 &&
      ninja -C "$tree/build" enclavia-runtime >"$tree.build.log" 2>&1
  )
}

a="$work/a"
b="$work2/bb/a-much-longer-absolute-path/than-the-first/copy-of-the-enclavia-source-tree"
start=$(date +%s)
specs=("$a 022 UTC" "$b 077 Pacific/Chatham")
if [ -n "$built" ]; then
  specs=("$b 077 Pacific/Chatham")
  copy_tree "$b" 077 2011 || { echo "FAIL: copying the tree" >&2; exit 1; }
  echo "copied $nfiles files into $b ($(($(date +%s) - start)) s); the first build is $built"
else
  copy_tree "$a" 022 1995 && copy_tree "$b" 077 2011 || { echo "FAIL: copying the tree" >&2; exit 1; }
  echo "copied $nfiles files into $a and $b ($(($(date +%s) - start)) s)"
fi

ok=true
for spec in "${specs[@]}"; do
  read -r tree mask tz <<<"$spec"
  t0=$(date +%s)
  if build_tree "$tree" "$mask" "$tz"; then
    echo "built the runtime in $tree ($(($(date +%s) - t0)) s)"
  else
    echo "FAIL: building the runtime in $tree failed:" >&2
    tail -n 30 "$tree.configure.log" "$tree.build.log" 2>/dev/null >&2
    ok=false
    break
  fi
  sleep 1  # a different wall-clock second for the second build
done
check "both trees build enclavia-runtime" $ok

out_a="$a/build/libexec/enclavia"
if [ -n "$built" ]; then
  out_a="$built/libexec/enclavia"
fi
out_b="$b/build/libexec/enclavia"
if $ok; then
  # The runtime is what its manifest names (libexec/enclavia may hold other programs built
  # beside it, such as enclavia-witness, which only the first, full build has).
  manifest_files() { { echo runtime.toml; sed -n 's/^source = "\(.*\)"$/\1/p' "$1/runtime.toml"; } | sort; }
  manifest_files "$out_a" >"$work/list_a"
  manifest_files "$out_b" >"$work/list_b"
  check "same runtime files in libexec/enclavia" cmp -s "$work/list_a" "$work/list_b"
  check "runtime.toml generated" test -s "$out_a/runtime.toml"
  # Every [[file]] source named by the manifest was built.
  while read -r name; do
    check "manifest file $name exists" test -x "$out_a/$name"
  done < <(sed -n 's/^source = "\(.*\)"$/\1/p' "$out_a/runtime.toml")
  check "manifest lists init" grep -qx 'path = "init"' "$out_a/runtime.toml"

  while read -r f; do
    [ -f "$out_b/$f" ] || continue
    sum_a=$(sha256sum <"$out_a/$f" | cut -d' ' -f1)
    sum_b=$(sha256sum <"$out_b/$f" | cut -d' ' -f1)
    if [ "$sum_a" = "$sum_b" ]; then
      echo "identical: libexec/enclavia/$f sha256:$sum_a"
      passed=$((passed + 1))
    else
      echo "FAIL: libexec/enclavia/$f differs: $sum_a vs $sum_b" >&2
      cmp "$out_a/$f" "$out_b/$f" | head -n 3 >&2
      failed=$((failed + 1))
    fi
    check "$f embeds no checkout path" \
      bash -c "! grep -qaF -e '$work' -e '$work2' -e '$src' '$out_a/$f' '$out_b/$f'"
  done <"$work/list_a"

  for f in $(sed -n 's/^source = "\(.*\)"$/\1/p' "$out_a/runtime.toml"); do
    check "$f is static" bash -c "! readelf -l '$out_a/$f' | grep -q INTERP"
    check "$f is stripped" bash -c "! readelf -S '$out_a/$f' | grep -q '\.symtab'"
    check "$f has a build id" bash -c "readelf -n '$out_a/$f' | grep -q 'Build ID'"
  done
fi

echo "runtime_reproducible took $(($(date +%s) - start)) s"
finish
