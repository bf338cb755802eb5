"""A TCP proxy for browser tests that can cut every open connection, as a network drop would."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.live_server import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `upstream`; `drop_all()` resets every connection open now."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def drop_all(self) -> int:
        """Cut every open connection without a WebSocket close frame; returns how many."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            # SO_LINGER 0: the peer sees a reset, like a dropped network.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self._close(sock)
        return len(sockets)

    def close(self) -> None:
        self._stopped = True
        self._listener.close()
        self.drop_all()
