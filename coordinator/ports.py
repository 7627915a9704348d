"""Ports for the processes of a local cluster (cluster.py), chosen so that a process restarted on
its port finds it free."""

from __future__ import annotations

import os
import secrets
import socket

PORT_BAND = 2000
"""Ports a local cluster picks from, per test worker (below the kernel's ephemeral range)."""
_handed_out: set[int] = set()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 for a local cluster's process.

    Not one the kernel would give (port 0 binds and outgoing connections take theirs from
    `ip_local_port_range`, 32768+ here): a process restarted on its port (tests restart signers and
    coordinators) could find it taken by some connection meanwhile. Below that range each pytest
    worker (PYTEST_XDIST_WORKER gwN) has a band of its own, and a random pick in it, never one this
    process handed out before, makes a clash with a released port of another cluster unlikely."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    low = 16000 + PORT_BAND * (index % 7)
    for _ in range(200):
        port = low + secrets.randbelow(PORT_BAND)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # the band is full: any port the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
