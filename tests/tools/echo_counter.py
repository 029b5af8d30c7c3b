#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""echo_counter.py PORT LOG: a TCP echo server that records what reaches it.

Writes "accept" to LOG when a connection arrives and "closed N" with the byte count when it ends,
so the adversarial tests can prove that no application byte got through.
"""
import socket
import sys
import threading

port, log_path = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()


def log(line):
    with lock, open(log_path, "a") as f:
        f.write(line + "\n")


def handle(conn):
    log("accept")
    total = 0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            total += len(data)
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()
        log(f"closed {total}")


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(128)
print(f"echo_counter: listening on {port}", flush=True)
while True:
    c, _ = server.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
