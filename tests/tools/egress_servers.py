#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""egress_servers.py LOG tcp:IP:PORT... udp:IP:PORT...: the destinations of the egress tests.

Each tcp endpoint answers any HTTP request with "hello from IP:PORT" (then closes); a request for
/big?n=BYTES gets that many bytes. Each udp endpoint records every datagram it receives. Every
connection and datagram is appended to LOG ("tcp IP:PORT from PEER", "udp IP:PORT TEXT"), so a
test can prove that something never arrived. Runs until killed."""
import socket
import sys
import threading

log_lock = threading.Lock()


def record(log, line):
    with log_lock:
        with open(log, "a") as f:
            f.write(line + "\n")


def serve_tcp(log, ip, port):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(64)
    name = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"

    def handle(c, peer):
        with c:
            record(log, f"tcp {name} from {peer[0]}")
            data = b""
            c.settimeout(10)
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                return
            target = data.split(b" ")[1].decode() if data.count(b" ") >= 2 else "/"
            if target.startswith("/big?n="):
                n = int(target[len("/big?n="):])
                head = f"HTTP/1.0 200 OK\r\nContent-Length: {n}\r\n\r\n".encode()
                c.sendall(head)
                block = b"x" * 65536
                while n > 0:
                    c.sendall(block[:min(n, len(block))])
                    n -= min(n, len(block))
                return
            body = f"hello from {name}\n".encode()
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\n\r\n" + body)

    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


def serve_udp(log, ip, port):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((ip, port))
    while True:
        data, _ = s.recvfrom(65536)
        record(log, f"udp {ip}:{port} {data.decode(errors='replace')}")


def main():
    log = sys.argv[1]
    threads = []
    for spec in sys.argv[2:]:
        kind, rest = spec.split(":", 1)
        ip, port = rest.rsplit(":", 1)
        ip = ip.strip("[]")
        target = serve_tcp if kind == "tcp" else serve_udp
        t = threading.Thread(target=target, args=(log, ip, int(port)), daemon=True)
        t.start()
        threads.append(t)
    print("ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
