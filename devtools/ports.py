"""Free loopback ports for the servers tests start (the servers re-check them on bind)."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (held open together, so no repeats)."""
    probes: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    """One loopback port that was free a moment ago."""
    return free_ports(1)[0]
