"""Free loopback ports for the servers tests start."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"
# A developer's own Redis; tests never use it, even when the kernel offers it.
RESERVED = frozenset({6379})
CLUSTER_BUS_OFFSET = 10_000  # Redis Cluster's node-to-node bus listens on port + 10000


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(*, with_cluster_bus: bool = False) -> int:
    """A port nothing listens on now (the caller binds it soon; a race is still possible).

    With `with_cluster_bus`, port + 10000 is free too and still a valid port."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port in RESERVED:
            continue
        if with_cluster_bus:
            bus = port + CLUSTER_BUS_OFFSET
            if bus > 65_535 or bus in RESERVED or not _is_free(bus):
                continue
        return port
    raise RuntimeError("no free loopback port found in 100 tries")
