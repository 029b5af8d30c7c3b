#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""dns_rewrite_proxy.py LISTEN_IP UPSTREAM_IP LOG: a hostile host's DNS path for the egress tests.

Listens on LISTEN_IP:53 (TCP and UDP) and relays every query to UPSTREAM_IP:53 (the real,
authoritative knotd), appending "QNAME QTYPE" of every query to LOG — the record of what left the
enclave. Answers pass unchanged, except that for names whose first label is "rewritten" every A
record's address is changed to 203.0.113.66: a host that steers an allowed name elsewhere. DNSSEC
makes that answer bogus; the enclave must refuse it."""
import socket
import struct
import sys
import threading

REWRITE_TO = bytes([203, 0, 113, 66])


def read_name(msg, off):
    labels = []
    jumped = False
    end = off
    hops = 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            hops += 1
            if hops > 32:
                raise ValueError("pointer loop")
            continue
        if n == 0:
            if not jumped:
                end = off + 1
            return ".".join(labels).lower(), end
        labels.append(msg[off + 1:off + 1 + n].decode(errors="replace"))
        off += 1 + n


def question(msg):
    name, off = read_name(msg, 12)
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    return name, qtype


def rewrite(msg):
    name, _ = question(msg)
    if not name.startswith("rewritten."):
        return msg
    msg = bytearray(msg)
    qd, an, ns, ar = struct.unpack("!HHHH", msg[4:12])
    _, off = read_name(msg, 12)
    off += 4
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            msg[off:off + 4] = REWRITE_TO
        off += rdlen
    return bytes(msg)


def log_query(log, msg):
    try:
        name, qtype = question(msg)
    except (ValueError, IndexError, struct.error):
        name, qtype = "?", 0
    with open(log, "a") as f:
        f.write(f"{name} {qtype}\n")


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def tcp_client(c, upstream, log):
    with c:
        try:
            while True:
                n = struct.unpack("!H", recv_exact(c, 2))[0]
                query = recv_exact(c, n)
                log_query(log, query)
                with socket.create_connection((upstream, 53), timeout=5) as u:
                    u.sendall(struct.pack("!H", len(query)) + query)
                    m = struct.unpack("!H", recv_exact(u, 2))[0]
                    answer = rewrite(recv_exact(u, m))
                c.sendall(struct.pack("!H", len(answer)) + answer)
        except (EOFError, OSError, ValueError, IndexError, struct.error):
            return


def serve_tcp(listen, upstream, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((listen, 53))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_client, args=(c, upstream, log), daemon=True).start()


def serve_udp(listen, upstream, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((listen, 53))
    while True:
        query, peer = s.recvfrom(65535)
        log_query(log, query)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(5)
                u.sendto(query, (upstream, 53))
                answer, _ = u.recvfrom(65535)
            s.sendto(rewrite(answer), peer)
        except (OSError, ValueError, IndexError, struct.error):
            pass


def main():
    listen, upstream, log = sys.argv[1], sys.argv[2], sys.argv[3]
    threading.Thread(target=serve_udp, args=(listen, upstream, log), daemon=True).start()
    t = threading.Thread(target=serve_tcp, args=(listen, upstream, log), daemon=True)
    t.start()
    print("ready", flush=True)
    t.join()


if __name__ == "__main__":
    main()
