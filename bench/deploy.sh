#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy.sh BUILD_DIR [RUNS]: how long from `enclavia deploy` to the first successful attested
# request to examples/hello, and how much memory the platform adds beside the app.
#   time:   `enclavia deploy hello.eif` + one HTTP GET over a verified channel (enclavia connect),
#           against the same app started as a bare process on the host and its first plain
#           HTTP GET (the baseline, alternating with the deploys in the same run). The first
#           deploy of the image includes its upload and check; later ones find it stored
#           (images are content-addressed) and are the repeated measurement.
#   memory: RSS of the host agent + the enclave's supervisor (enclavia-sandbox, with its NSM
#           simulator) + the enclave's init + its ingress, beside the RSS of the app itself.
# Goals (issue 5): under 1 s and under 30 MiB. Prints medians.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
runs=${2:-5}
bin=$build/bin
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
cleanup() {
  "$bin/enclavia" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$here/../tests/tools/processes.sh"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ms() { date +%s%3N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

if [ "$(id -u)" -ne 0 ] || ! unshare --mount --pid --net --fork true 2>/dev/null; then
  echo "deploy.sh: skipped: the local provider needs root and Linux namespaces, which this machine does not give"
  exit 0
fi
"$bin/enclavia" up -d >/dev/null
mkdir -p "$work/hello"
cp -r "$build/examples/hello/Enclaviafile" "$build/examples/hello/rootfs" "$work/hello/"
"$bin/enclavia" build "$work/hello" -o "$work/hello.eif" --no-progress >/dev/null
# A trust file for hello's PCRs (same image every run).
t0=$(now_ms)
"$bin/enclavia" deploy "$work/hello.eif" --name warmup --json >/dev/null
first_deploy=$(( $(now_ms) - t0 ))
"$bin/enclavia" trust warmup -o "$work/trust.toml" >/dev/null
"$bin/enclavia" rm warmup >/dev/null

request='GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n'
: >"$work/base.ms"; : >"$work/deploy.ms"; : >"$work/overhead.kib"; : >"$work/app.kib"
for i in $(seq "$runs"); do
  # Baseline: the bare app on the host, until its first answer.
  port=$(free_port)
  t0=$(now_ms)
  "$build/examples/hello/rootfs/bin/hello" --port "$port" >/dev/null 2>&1 &
  app=$!
  until curl -s --max-time 1 "http://127.0.0.1:$port/" | grep -q hello; do sleep 0.005; done
  echo $(( $(now_ms) - t0 )) >>"$work/base.ms"
  kill "$app"; wait "$app" 2>/dev/null || true

  # Enclavia: deploy, then the first attested request.
  t0=$(now_ms)
  "$bin/enclavia" deploy "$work/hello.eif" --name "h$i" --json >"$work/h.json"
  url=$(sed -n 's/.*"url": "\(ws:[^"]*\)".*/\1/p' "$work/h.json")  # no python3 in the timed part
  until printf "$request" | "$bin/enclavia" connect "$url" --trust "$work/trust.toml" --port 8080 2>/dev/null |
      grep -q 'hello from the enclave'; do
    sleep 0.005
  done
  echo $(( $(now_ms) - t0 )) >>"$work/deploy.ms"

  # Memory: the platform's processes for this enclave, and the app.
  state="$ENCLAVIA_HOME/host/enclaves/h$i/state.json"
  supervisor=$(json "$state" 'd["supervisor_pid"]')
  init=$(json "$state" 'd["init_pid"]')
  agent=$(cat "$ENCLAVIA_HOME/host/pid")
  overhead=$(( $(rss_kib "$agent") + $(rss_kib "$supervisor") + $(rss_kib "$init") ))
  app_kib=0
  for child in $(pgrep -P "$init"); do
    case "$(cat "/proc/$child/comm")" in
      enclavia-ingres*) overhead=$(( overhead + $(rss_kib "$child") )) ;;
      hello) app_kib=$(rss_kib "$child") ;;
    esac
  done
  echo "$overhead" >>"$work/overhead.kib"
  echo "$app_kib" >>"$work/app.kib"
  "$bin/enclavia" rm "h$i" >/dev/null
done

base=$(median <"$work/base.ms")
dep=$(median <"$work/deploy.ms")
over=$(median <"$work/overhead.kib")
app_kib=$(median <"$work/app.kib")
echo
echo "deploy.sh: $runs runs, medians"
printf '| | median | ratio / goal |\n|---|---|---|\n'
printf '| bare app on the host: start → first HTTP answer (baseline) | %s ms | 1.00 |\n' "$base"
printf '| first deploy of a new image: upload + check + launch, until its ingress answers | %s ms | |\n' "$first_deploy"
printf '| enclavia deploy → first attested request | %s ms | %s× baseline; goal < 1000 ms |\n' \
  "$dep" "$(awk -v a="$dep" -v b="$base" 'BEGIN {printf "%.1f", (b > 0 ? a / b : 0)}')"
printf '| platform memory (agent + supervisor/NSM + init + ingress), RSS | %.1f MiB | goal < 30 MiB |\n' \
  "$(awk -v k="$over" 'BEGIN {print k / 1024}')"
printf '| the app itself (hello), RSS | %.1f MiB | |\n' "$(awk -v k="$app_kib" 'BEGIN {print k / 1024}')"
