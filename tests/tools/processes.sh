# SPDX-License-Identifier: Apache-2.0
# processes.sh: what the scripts that start Enclavia's daemons share (integration.channel,
# bench/channel.sh, scripts/demo-channel). Source it.

# free_port prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_line FILE REGEX waits up to 10 s for a line of FILE matching REGEX and prints it.
wait_line() {
  for _ in $(seq 1 200); do
    if grep -Eq "$2" "$1" 2>/dev/null; then grep -Em1 "$2" "$1"; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for /$2/ in $1: $(cat "$1" 2>/dev/null)" >&2
  return 1
}

# listening_port reads "… listening on tcp:127.0.0.1:PORT …" (the daemons' ready line) on
# stdin and prints PORT.
listening_port() { sed -E 's/.*listening on tcp:127\.0\.0\.1:([0-9]+).*/\1/'; }
