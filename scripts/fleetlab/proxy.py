"""The hosts' only way out: an allow-list HTTP proxy (plain GET to the mirror, CONNECT to the index).

Its listening socket is made inside the fleet's switch namespace (setns), then the process returns to
this machine's namespace, so every outgoing connection leaves from here while the hosts need no route.
Run as `python3 -m fleetlab.proxy NETNS_PATH ADDRESS PORT HOST...` (stdlib only).
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading
from urllib.parse import urlsplit

CLONE_NEWNET = 0x40000000
HTTP_PORTS = {80}
TLS_PORTS = {443}


def listen_in_namespace(netns_path: str, address: str, port: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns_path}")
        server = socket.create_server((address, port), backlog=128)
    finally:
        # Back home before any thread exists: upstream connections leave from this machine's namespace.
        if libc.setns(own, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(own)
        os.close(target)
    return server


def read_head(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
    """One request head (up to the blank line) and what was read beyond it; None at end of stream."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
        if len(buffer) > 65536:
            return None
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for conn in (source, sink):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Proxy:
    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed

    def refuse(self, conn: socket.socket, why: str) -> None:
        print(f"proxy: refused {why}", file=sys.stderr, flush=True)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def handle(self, conn: socket.socket) -> None:
        with conn:
            first = read_head(conn, b"")
            if first is None:
                return
            head, rest = first
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                if host not in self.allowed or int(port or 0) not in TLS_PORTS:
                    return self.refuse(conn, target)
                with socket.create_connection((host, int(port)), timeout=30) as upstream:
                    upstream.settimeout(None)
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if rest:
                        upstream.sendall(rest)
                    self.relay(conn, upstream)
                return
            url = urlsplit(target)
            if url.scheme != "http" or url.hostname not in self.allowed or (url.port or 80) not in HTTP_PORTS:
                return self.refuse(conn, target)
            with socket.create_connection((url.hostname, url.port or 80), timeout=30) as upstream:
                upstream.settimeout(None)
                back = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
                back.start()
                self.forward_requests(conn, upstream, url.hostname, head, rest)
                back.join()

    def forward_requests(self, conn, upstream, host: str, head: bytes, rest: bytes) -> None:
        # apt pipelines its GETs on one connection: every request on it must stay on the same allowed host.
        while True:
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(request_line) != 3 or urlsplit(request_line[1]).hostname != host:
                break
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body, rest = rest[:length], rest[length:]
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            rest = body[length:] + rest
            upstream.sendall(head + body[:length])
            following = read_head(conn, rest)
            if following is None:
                break
            head, rest = following
        try:
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def relay(self, a: socket.socket, b: socket.socket) -> None:
        back = threading.Thread(target=pipe, args=(b, a), daemon=True)
        back.start()
        pipe(a, b)
        back.join()

    def serve(self, server: socket.socket) -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self.safe_handle, args=(conn,), daemon=True).start()

    def safe_handle(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except (OSError, ValueError) as error:
            print(f"proxy: {error}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    netns_path, address, port, *allowed = argv
    server = listen_in_namespace(netns_path, address, int(port))
    print(f"proxy: listening on {address}:{port}, allowing {' '.join(allowed)}", file=sys.stderr, flush=True)
    Proxy(set(allowed)).serve(server)


if __name__ == "__main__":
    main(sys.argv[1:])
