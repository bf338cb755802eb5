"""This server process's name (host:pid), as recorded on streams and upload jobs, and whether one is gone."""

from __future__ import annotations

import os
import socket

HOST = socket.gethostname()
SERVER_ID = f"{HOST}:{os.getpid()}"


def process_gone(server_id: str) -> bool:
    """True when `server_id` names a process of this host that no longer runs (another host: unknown)."""
    host, _, pid = server_id.rpartition(":")
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
