#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build_test ENCLAVIA RUNTIME_DIR EIF_CHECK: drives `enclavia build`, `describe` and `reproduce`
# as a user would. Two builds from copies of one source tree (different directories, file
# creation order, mtimes, umask and wall-clock time) must give byte-identical images; the CRC and
# PCRs are checked independently (eif_check.py: plain Python zlib + hashlib); one changed byte
# must move PCR2 and PCR0 but not PCR1, and reproduce must name the file; a changed kernel must
# be refused by the lock.
set -uo pipefail
enclavia=${1:?path to enclavia}
export ENCLAVIA_RUNTIME_DIR=${2:?runtime dir}
eif_check=${3:?path to eif_check.py}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"
unset SOURCE_DATE_EPOCH

jget() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

# A synthetic kernel (the builder treats it as an opaque blob) with a config like Debian's.
mkdir -p "$work/kernel"
head -c 300000 /dev/urandom >"$work/kernel/vmlinuz"
printf '#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.0-99-amd64 Kernel Configuration\n' \
  >"$work/kernel/config"
export ENCLAVIA_KERNEL_DIR="$work/kernel"

# The source: an Enclaviafile and a rootfs with executables, data, symlinks and a hard link.
make_source() {  # make_source DIR ORDER(forward|reverse) UMASK MTIME
  local dir=$1 order=$2
  mkdir -p "$dir"
  (
    umask "$3"
    cd "$dir" || exit 1
    cat >Enclaviafile <<'TOML'
[image]
name = "itest"
version = "7"

[app]
rootfs = "rootfs"
cmd = ["/bin/app", "--port", "8080"]
env = { GREETING = "hi", MODE = "test" }
workdir = "/srv"
port = 8080
TOML
    local files=(bin/app srv/data.txt srv/deep/a/b/c.txt etc/hosts lib/libx.so usr/share/doc/README)
    if [ "$order" = reverse ]; then
      files=(usr/share/doc/README lib/libx.so etc/hosts srv/deep/a/b/c.txt srv/data.txt bin/app)
    fi
    for f in "${files[@]}"; do
      mkdir -p "rootfs/$(dirname "$f")"
      printf 'content of %s\n' "$f" >"rootfs/$f"
    done
    head -c 200000 /dev/zero | tr '\0' 'x' >rootfs/srv/big.bin
    chmod +x rootfs/bin/app rootfs/lib/libx.so
    ln -s ../lib/libx.so rootfs/bin/link-rel
    ln -s /srv/data.txt rootfs/bin/link-abs
    ln rootfs/srv/data.txt rootfs/srv/hardlink.txt
    mkdir -p rootfs/empty
    find . -exec touch -h -d "$4" {} +
  )
}
make_source "$work/a" forward 022 "2001-02-03 04:05:06"
sleep 1
make_source "$work/b/longer/path" reverse 077 "2019-09-09 09:09:09"
chmod -R a+rX "$work/b"

expect 0 "build a" -- "$enclavia" build "$work/a" -o "$work/a.eif" --json
cp "$work/out" "$work/a.json"
check "build --json has nitro-cli's shape" \
  test "$(jget "$work/a.json" "['Measurements']['HashAlgorithm']")" = "Sha384 { ... }"
check "lock created" test -s "$work/a/enclavia.lock"
sleep 1
expect 0 "build b" -- env TZ=Asia/Tokyo "$enclavia" build "$work/b/longer/path" -o "$work/b.eif"
check "two builds are byte-identical" cmp -s "$work/a.eif" "$work/b.eif"
check "the two locks are identical" cmp -s "$work/a/enclavia.lock" "$work/b/longer/path/enclavia.lock"
check "lock lists every app file" grep -q '"srv/deep/a/b/c.txt" = ' "$work/a/enclavia.lock"

# Independent check: CRC and PCRs from the bytes with plain zlib and hashlib.
expect 0 "eif_check" -- python3 "$eif_check" "$work/a.eif"
cp "$work/out" "$work/check.json"
check "independent CRC" test "$(jget "$work/check.json" "['crc_ok']")" = True
for i in 0 1 2; do
  check "independent PCR$i" test "$(jget "$work/check.json" "['pcr$i']")" = \
    "$(jget "$work/a.json" "['Measurements']['PCR$i']")"
done
expect 0 "describe --json" -- "$enclavia" describe "$work/a.eif" --json
check "describe PCR0" test "$(jget "$work/out" "['Measurements']['PCR0']")" = \
  "$(jget "$work/a.json" "['Measurements']['PCR0']")"
check "describe CRC" test "$(jget "$work/out" "['CheckCRC']")" = True
check "describe metadata: fixed build time" \
  test "$(jget "$work/out" "['Metadata']['BuildTime']")" = "1970-01-01T00:00:00+00:00"
check "describe metadata: kernel version" \
  test "$(jget "$work/out" "['Metadata']['KernelVersion']")" = "6.1.0"
expect 0 "describe" -- "$enclavia" describe "$work/a.eif"
check "describe names the image" grep -q "itest version 7" "$work/out"

# Reproduce against the image, a PCR file, and an attestation of those PCRs.
expect 0 "reproduce --expect" -- "$enclavia" reproduce "$work/a" --expect "$work/b.eif"
expect 0 "reproduce --pcrs" -- "$enclavia" reproduce "$work/b/longer/path" --pcrs "$work/a.json"
pcr() { jget "$work/a.json" "['Measurements']['PCR$1']"; }
expect 0 "simulate attestation" -- "$enclavia" attest simulate --state-dir "$work/sim" \
  --pcr "0=$(pcr 0)" --pcr "1=$(pcr 1)" --pcr "2=$(pcr 2)" -o "$work/doc.cose"
expect 0 "reproduce --attestation" -- "$enclavia" reproduce "$work/a" \
  --attestation "$work/doc.cose" --root "$work/sim/root.pem"
expect 1 "reproduce --attestation without trusting the simulator" -- "$enclavia" reproduce \
  "$work/a" --attestation "$work/doc.cose"

# One changed byte in one app file.
printf 'Content of srv/deep/a/b/c.txt\n' >"$work/b/longer/path/rootfs/srv/deep/a/b/c.txt"
expect 1 "the lock refuses a changed app file" -- "$enclavia" build "$work/b/longer/path"
check "the refusal names the file" grep -q "app file srv/deep/a/b/c.txt" "$work/err"
check "nothing written on refusal" test ! -e "$work/refused.eif"
expect 0 "build --update-lock" -- "$enclavia" build "$work/b/longer/path" --update-lock \
  -o "$work/changed.eif" --json
cp "$work/out" "$work/changed.json"
changed() { jget "$work/changed.json" "['Measurements']['PCR$1']"; }
check "PCR0 changed" test "$(changed 0)" != "$(pcr 0)"
check "PCR1 unchanged" test "$(changed 1)" = "$(pcr 1)"
check "PCR2 changed" test "$(changed 2)" != "$(pcr 2)"
expect 1 "reproduce finds the difference" -- "$enclavia" reproduce "$work/a" --expect "$work/changed.eif"
check "reproduce says PCR2 differs" grep -q "PCR2  DIFFERS" "$work/out"
check "reproduce says PCR1 matches" grep -q "PCR1  match" "$work/out"
check "reproduce names the file" grep -q "/srv/deep/a/b/c.txt: content differs" "$work/out"
check "reproduce names no other file" test "$(grep -c ': content differs' "$work/out")" -eq 1
expect 1 "reproduce --json" -- "$enclavia" reproduce "$work/a" --expect "$work/changed.eif" --json
check "reproduce --json lists the file" \
  test "$(jget "$work/out" "['Ramdisks'][0]['Files'][0]['Path']")" = "srv/deep/a/b/c.txt"

# A changed kernel is refused by the lock, naming the kernel, and leaves no output.
printf 'x' >>"$work/kernel/vmlinuz"
expect 1 "the lock refuses a changed kernel" -- "$enclavia" build "$work/a" -o "$work/k.eif"
check "the refusal names the kernel" grep -q "kernel: sha256" "$work/err"
check "no output after a refusal" test ! -e "$work/k.eif"
check "no partial file left" test -z "$(find "$work" -maxdepth 1 -name '.k.eif*')"
expect 1 "reproduce refuses inputs that differ from the lock" -- "$enclavia" reproduce "$work/a" \
  --expect "$work/a.eif"

# Enclaviafile errors name the key; SOURCE_DATE_EPOCH sets the time and is pinned by the lock.
mkdir -p "$work/bad/rootfs"
printf '[image]\nname = "x"\n[app]\nrootfs = "rootfs"\ncmd = ["/x"]\nport = 1\nwrkdir = "/"\n' \
  >"$work/bad/Enclaviafile"
expect 1 "unknown key" -- "$enclavia" build "$work/bad"
check "the error names the key" grep -q "unknown key app.wrkdir" "$work/err"
sed -i '/wrkdir/d' "$work/bad/Enclaviafile"
expect 0 "SOURCE_DATE_EPOCH build" -- env SOURCE_DATE_EPOCH=1700000000 "$enclavia" build \
  "$work/bad" -o "$work/sde.eif"
expect 0 "describe SOURCE_DATE_EPOCH build" -- "$enclavia" describe "$work/sde.eif" --json
check "build time from SOURCE_DATE_EPOCH" \
  test "$(jget "$work/out" "['Metadata']['BuildTime']")" = "2023-11-14T22:13:20+00:00"
expect 0 "the lock keeps SOURCE_DATE_EPOCH" -- "$enclavia" build "$work/bad" -o "$work/sde2.eif"
check "same image without the variable" cmp -s "$work/sde.eif" "$work/sde2.eif"
expect 1 "a different SOURCE_DATE_EPOCH is refused" -- env SOURCE_DATE_EPOCH=5 "$enclavia" build \
  "$work/bad"

# Signed images: PCR8 is the extend of SHA-384 of the certificate's DER.
openssl ecparam -name secp384r1 -genkey -noout -out "$work/sign.key" 2>/dev/null
openssl req -new -x509 -key "$work/sign.key" -out "$work/sign.pem" -days 30 -subj "/CN=itest" \
  2>/dev/null
expect 0 "signed build" -- "$enclavia" build "$work/a" --update-lock --sign-cert "$work/sign.pem" \
  --sign-key "$work/sign.key" -o "$work/signed.eif" --json
cp "$work/out" "$work/signed.json"
openssl x509 -in "$work/sign.pem" -outform der -out "$work/sign.der"
want8=$(python3 -c "import hashlib,sys; d=hashlib.sha384(open(sys.argv[1],'rb').read()).digest(); print(hashlib.sha384(bytes(48)+d).hexdigest())" "$work/sign.der")
check "PCR8" test "$(jget "$work/signed.json" "['Measurements']['PCR8']")" = "$want8"
expect 0 "describe signed" -- "$enclavia" describe "$work/signed.eif" --json
check "signature check" test "$(jget "$work/out" "['SignatureCheck']")" = True
check "IsSigned" test "$(jget "$work/out" "['IsSigned']")" = True

# An OCI image (`docker save` layout, made here with Python's tarfile): two layers, the second
# deleting a file with a whiteout; cmd, env and workdir come from the image config.
mkdir -p "$work/oci"
python3 - "$work/oci/image.tar" <<'PY'
import hashlib, io, json, sys, tarfile
def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1234567890
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                t.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, data
                t.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755 if name.startswith("bin/") else 0o644
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()
l1 = layer([("bin", "dir", None), ("bin/server", "file", b"#!/bin/sh\necho hi\n"),
            ("etc", "dir", None), ("etc/old.conf", "file", b"old\n"),
            ("etc/server.conf", "file", b"port=80\n"), ("etc/alias.conf", "link", "etc/server.conf")])
l2 = layer([("etc/.wh.old.conf", "file", b""), ("bin/sh-link", "sym", "/bin/server")])
diff = ["sha256:" + hashlib.sha256(l).hexdigest() for l in (l1, l2)]
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": ["/bin/server"], "Cmd": ["--port", "80"], "Env": ["PATH=/bin", "A=1"],
               "WorkingDir": "/etc"},
    "rootfs": {"type": "layers", "diff_ids": diff}}).encode()
cname = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": cname, "RepoTags": ["itest:1"],
                        "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode()
with tarfile.open(sys.argv[1], "w") as out:
    for name, data in (("l1/layer.tar", l1), ("l2/layer.tar", l2), (cname, config),
                       ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
PY
printf '[image]\nname = "oci-itest"\n[app]\noci = "image.tar"\nport = 80\nenv = { A = "2" }\n' \
  >"$work/oci/Enclaviafile"
expect 0 "OCI build" -- "$enclavia" build "$work/oci" -o "$work/oci1.eif"
check "the lock pins the layers" grep -q '^layers = \[' "$work/oci/enclavia.lock"
rm "$work/oci/enclavia.lock"
expect 0 "OCI build again" -- "$enclavia" build "$work/oci" -o "$work/oci2.eif"
check "OCI builds are byte-identical" cmp -s "$work/oci1.eif" "$work/oci2.eif"
expect 0 "describe OCI image" -- "$enclavia" describe "$work/oci1.eif" --json
check "DockerInfo names the config" \
  test "$(jget "$work/out" "['Metadata']['DockerInfo']['ConfigDigest'][:7]")" = "sha256:"
printf '[image]\nname = "oci-itest"\n[app]\noci = "image.tar"\nport = 80\n' >"$work/oci/Enclaviafile"
python3 - "$work/oci/image.tar" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.index(b"port=80")
data[i + 5] = ord("9")
open(sys.argv[1], "wb").write(data)
PY
expect 1 "a corrupted layer is refused" -- "$enclavia" build "$work/oci" -o "$work/oci3.eif"
check "the error names the layer" grep -q "sha256" "$work/err"

# kernel = "nitro": nitro-cli's blobs (a synthetic blobs directory here): its bzImage, its
# config for the metadata and its cmdline file as the default command line.
mkdir -p "$work/blobs" "$work/nitro/rootfs"
head -c 50000 /dev/urandom >"$work/blobs/bzImage"
printf '#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration\n' \
  >"$work/blobs/bzImage.config"
printf 'reboot=k panic=30 pci=off nomodules console=ttyS0\n' >"$work/blobs/cmdline"
printf 'kernel = "nitro"\n[image]\nname = "n"\n[app]\nrootfs = "rootfs"\ncmd = ["/x"]\nport = 1\n' \
  >"$work/nitro/Enclaviafile"
expect 1 "nitro kernel without blobs" -- env NITRO_BLOBS_DIR="$work/none" "$enclavia" build "$work/nitro"
check "the error names the blobs dir" grep -q "NITRO_BLOBS_DIR" "$work/err"
expect 0 "nitro kernel" -- env NITRO_BLOBS_DIR="$work/blobs" "$enclavia" build "$work/nitro" \
  -o "$work/nitro.eif"
check "cmdline from the blobs" grep -q "cmdline  reboot=k panic=30 pci=off nomodules console=ttyS0$" "$work/out"
check "the lock says nitro" grep -q 'source = "nitro"' "$work/nitro/enclavia.lock"
expect 0 "describe nitro image" -- "$enclavia" describe "$work/nitro.eif" --json
check "kernel version from bzImage.config" \
  test "$(jget "$work/out" "['Metadata']['KernelVersion']")" = "4.14.256"

# Damaged images get a clear error.
cp "$work/a.eif" "$work/bad.eif"
printf '\x00' | dd of="$work/bad.eif" bs=1 seek=600 conv=notrunc 2>/dev/null
expect 1 "describe a damaged image" -- "$enclavia" describe "$work/bad.eif"
check "CRC mismatch reported" grep -q "CRC" "$work/err"
head -c 1000 "$work/a.eif" >"$work/short.eif"
expect 1 "describe a truncated image" -- "$enclavia" describe "$work/short.eif"

finish
