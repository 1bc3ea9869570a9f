"""A loopback TCP proxy that caps server->client bandwidth, to model a LAN link to MinIO.

The kernel here has no `prio`/`tbf` qdiscs, so the link is shaped in user space: one token bucket
shared by all connections (the link), refilled at `mbit_per_s`.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.services import free_port  # noqa: E402

CHUNK = 64 * 1024


class TokenBucket:
    def __init__(self, bytes_per_s: float):
        self.rate = bytes_per_s
        self.tokens = 0.0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self, n: int) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate * 0.01, self.tokens + (now - self.last) * self.rate)  # 10 ms burst
                self.last = now
                if self.tokens >= n or self.tokens >= self.rate * 0.01:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            time.sleep(min(wait, 0.005))


def _pump(src: socket.socket, dst: socket.socket, bucket: TokenBucket | None) -> None:
    try:
        while data := src.recv(CHUNK):
            if bucket:
                bucket.take(len(data))
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def throttled(upstream_port: int, mbit_per_s: float):
    """Yield a loopback port that forwards to `upstream_port` with downstream bandwidth capped."""
    bucket = TokenBucket(mbit_per_s * 1e6 / 8)
    listener = socket.create_server(("127.0.0.1", port := free_port()))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", upstream_port))
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client, bucket), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        listener.close()
        thread.join(2)
