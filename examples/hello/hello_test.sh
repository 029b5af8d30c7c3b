#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# hello_test HELLO [static|dynamic]: starts examples/hello on a free port and checks it as a client
# would: the body, GREETING, concurrent connections, other methods, a clean exit on SIGTERM; and,
# unless "dynamic" (sanitizer builds), that the binary is static and stripped.
set -uo pipefail
hello=${1:?path to hello}
linkage=${2:-static}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/../../tests/integration/testlib.sh"

start() {  # start NAME [ENV...]: runs hello --port 0, sets $pid and $port
  local name=$1; shift
  env "$@" "$hello" --port 0 >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^hello: listening on 0\.0\.0\.0:\([0-9]*\)$/\1/p' "$work/$name.out")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "FAIL: $name did not start: $(cat "$work/$name.err")" >&2
  return 1
}
request() {  # request PORT METHOD: prints the whole response
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf '%s / HTTP/1.1\r\nHost: localhost\r\n\r\n' "$2" >&3
  timeout 5 cat <&3
  exec 3<&-
}
body() { request "$1" GET | tr -d '\r' | sed '1,/^$/d'; }

start greeting GREETING=test || exit 1
check "GET body" [ "$(body "$port")" = "hello from the enclave: test" ]
check "GET status" [ "$(request "$port" GET | head -1 | tr -d '\r')" = "HTTP/1.1 200 OK" ]
check "POST is 405" [ "$(request "$port" POST | head -1 | tr -d '\r')" = "HTTP/1.1 405 Method Not Allowed" ]

# Five idle connections do not block a sixth client.
for i in 1 2 3 4 5; do eval "exec $((i + 3))<>/dev/tcp/127.0.0.1/$port"; done
check "served while 5 connections idle" [ "$(body "$port")" = "hello from the enclave: test" ]
for i in 1 2 3 4 5; do eval "exec $((i + 3))<&-"; done

kill -TERM "$pid"
wait "$pid"
check "SIGTERM exits 0" [ $? -eq 0 ]

start default -u GREETING || exit 1
check "default greeting" [ "$(body "$port")" = "hello from the enclave: world" ]
kill -TERM "$pid"
wait "$pid"
check "second SIGTERM exits 0" [ $? -eq 0 ]

check "bad flag exits 2" [ "$("$hello" --nope 2>/dev/null; echo $?)" -eq 2 ]
if [ "$linkage" = static ]; then
  check "static (no interpreter)" bash -c "! readelf -l '$hello' | grep -q INTERP"
  check "stripped (no symbol table)" bash -c "! readelf -S '$hello' | grep -q '\.symtab'"
fi

finish
